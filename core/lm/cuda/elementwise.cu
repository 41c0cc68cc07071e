// Entrywise GPT kernels: embedding gather plus positions, bias broadcast, GELU (tanh form), and
// the two fused (the MLP's bias and GELU in one pass).
#include <algorithm>
#include <cstdint>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/kernels.cuh"
#include "core/lm/cuda/launch.cuh"

namespace kwm::lm::cuda::kernels {
namespace {

__global__ void embed_kernel(const float* token_embedding, const float* position_embedding,
                             const std::int32_t* tokens, float* x, Index d, Index count,
                             Index length, Index vocab, Index context) {
  for (Index k = global_thread(); k < count; k += grid_threads()) {
    const Index i = k % d;
    const Index n = k / d;
    const Index t = n % length;
    x[k] = token_embedding[tokens[n] + i * vocab] + position_embedding[t + i * context];
  }
}

// Per-column broadcasts (bias add, bias + GELU): blockIdx.y walks the columns and threads the
// rows, so the bias index needs no 64-bit division (what a flat k % rows cost: the bias add ran at
// half the copy rate). kVector: rows a multiple of 4 and 16-byte aligned pointers, float4 accesses.
constexpr Index kColumnBlocks = 65535;

__device__ inline float gelu_of(float v) {
  constexpr float kSqrtTwoOverPi = 0.7978845608028654f;
  constexpr float kCubic = 0.044715f;
  return 0.5f * v * (1.0f + tanhf(kSqrtTwoOverPi * (v + kCubic * v * v * v)));
}

// z(:, j) += bias (nothing to add when bias is null); with kGelu also out(:, j) = gelu(z(:, j))
// (out may be z).
template <bool kGelu, bool kVector>
__global__ void bias_columns_kernel(float* z, const float* bias, float* out, Index rows,
                                    Index columns) {
  const Index width = kVector ? rows / 4 : rows;
  const Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= width) return;
  if constexpr (kVector) {
    const float4 b = bias != nullptr ? reinterpret_cast<const float4*>(bias)[i]
                                     : make_float4(0.f, 0.f, 0.f, 0.f);
    for (Index j = blockIdx.y; j < columns; j += gridDim.y) {
      float4 v = reinterpret_cast<float4*>(z + j * rows)[i];
      v.x += b.x;
      v.y += b.y;
      v.z += b.z;
      v.w += b.w;
      reinterpret_cast<float4*>(z + j * rows)[i] = v;
      if constexpr (kGelu) {
        reinterpret_cast<float4*>(out + j * rows)[i] =
            make_float4(gelu_of(v.x), gelu_of(v.y), gelu_of(v.z), gelu_of(v.w));
      }
    }
  } else {
    const float b = bias != nullptr ? bias[i] : 0.0f;
    for (Index j = blockIdx.y; j < columns; j += gridDim.y) {
      const float v = z[i + j * rows] + b;
      z[i + j * rows] = v;
      if constexpr (kGelu) out[i + j * rows] = gelu_of(v);
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

template <bool kGelu>
void bias_columns(float* z, const float* bias, float* out, Index rows, Index columns,
                  cudaStream_t stream) {
  if (rows == 0 || columns == 0) return;
  const bool vector =
      rows % 4 == 0 && aligned16(z) && aligned16(bias) && (!kGelu || aligned16(out));
  const Index width = vector ? rows / 4 : rows;
  const dim3 grid(static_cast<unsigned>((width + kThreads - 1) / kThreads),
                  static_cast<unsigned>(std::min(columns, kColumnBlocks)));
  if (vector) {
    bias_columns_kernel<kGelu, true><<<grid, kThreads, 0, stream>>>(z, bias, out, rows, columns);
  } else {
    bias_columns_kernel<kGelu, false><<<grid, kThreads, 0, stream>>>(z, bias, out, rows, columns);
  }
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void embed(const float* token_embedding, const float* position_embedding,
           const std::int32_t* tokens, float* x, Index d, Index columns, Index length, Index vocab,
           Index context, cudaStream_t stream) {
  const Index count = d * columns;
  embed_kernel<<<grid_for(count), kThreads, 0, stream>>>(
      token_embedding, position_embedding, tokens, x, d, count, length, vocab, context);
  KWM_CUDA_CHECK_LAUNCH();
}

void add_bias(float* z, const float* bias, Index rows, Index columns, cudaStream_t stream) {
  bias_columns<false>(z, bias, nullptr, rows, columns, stream);
}

void bias_gelu(float* z, const float* bias, float* out, Index rows, Index columns,
               cudaStream_t stream) {
  bias_columns<true>(z, bias, out, rows, columns, stream);
}

}  // namespace kwm::lm::cuda::kernels
