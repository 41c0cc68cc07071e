// Entrywise GPT kernels: embedding gather plus positions, bias broadcast, GELU (tanh form).
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

__global__ void add_bias_kernel(float* z, const float* bias, Index rows, Index count) {
  for (Index k = global_thread(); k < count; k += grid_threads()) z[k] += bias[k % rows];
}

__global__ void gelu_kernel(float* x, Index count) {
  constexpr float kSqrtTwoOverPi = 0.7978845608028654f;
  constexpr float kCubic = 0.044715f;
  for (Index k = global_thread(); k < count; k += grid_threads()) {
    const float v = x[k];
    x[k] = 0.5f * v * (1.0f + tanhf(kSqrtTwoOverPi * (v + kCubic * v * v * v)));
  }
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
  const Index count = rows * columns;
  add_bias_kernel<<<grid_for(count), kThreads, 0, stream>>>(z, bias, rows, count);
  KWM_CUDA_CHECK_LAUNCH();
}

void gelu(float* x, Index count, cudaStream_t stream) {
  gelu_kernel<<<grid_for(count), kThreads, 0, stream>>>(x, count);
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace kwm::lm::cuda::kernels
