// Row sums of a column-major rows x columns matrix over all its columns (the tokens): the bias and
// layer-norm parts of the transposed pass and the learner's statistics. Two launches in a fixed
// order, so the sums do not depend on scheduling: the columns split into kChunks slices, each block
// sums 32 rows of one slice (a warp reads 32 consecutive floats of a column, 8 warps take every
// 8th column) into partial[chunk][row]; then one warp per row adds its chunks. A
// cuBLAS SGEMV with a ones vector did this at about a third of the copy rate, plus a split-K
// reduce launch (bench/lm_cuda/profile_step_device.sh).
#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/block_reduce.cuh"
#include "core/lm/cuda/transpose_kernels.cuh"

namespace kwm::lm::cuda::kernels {
namespace {

constexpr Index kChunks = 64;
constexpr int kRowsPerBlock = 32;
constexpr int kWarps = 8;
constexpr int kFinishWarps = 8;

// Writes v rounded to bfloat16 and returns that value in fp32 (exactly representable).
__device__ __forceinline__ float round_bf16(float v, __nv_bfloat16* to) {
  const __nv_bfloat16 r = __float2bfloat16_rn(v);
  *to = r;
  return __bfloat162float(r);
}

// partial (chunks x rows, twice when kSquares: sums, then sums of squares). Four independent
// accumulators per thread keep four loads in flight (one chain of adds waited on every load).
// With `rounded` every element is also rounded to bfloat16 (to nearest even), written there, and
// the sums are of the rounded values.
template <bool kSquares>
__global__ void row_sum_chunks_kernel(const float* a, Index rows, Index columns, Index per_chunk,
                                      float* partial, __nv_bfloat16* rounded) {
  __shared__ float sums[kWarps][kRowsPerBlock + 1];
  __shared__ float squares[kWarps][kRowsPerBlock + 1];
  const int lane = static_cast<int>(threadIdx.x);
  const int warp = static_cast<int>(threadIdx.y);
  const Index row = static_cast<Index>(blockIdx.x) * kRowsPerBlock + lane;
  const Index chunk = blockIdx.y;
  const Index begin = chunk * per_chunk;
  const Index end = begin + per_chunk < columns ? begin + per_chunk : columns;
  float s[4] = {0.0f, 0.0f, 0.0f, 0.0f}, q[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (row < rows) {
    Index j = begin + warp;
    for (; j + 3 * kWarps < end; j += 4 * kWarps) {
      float v[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) v[u] = a[row + (j + u * kWarps) * rows];
      if (rounded != nullptr) {
#pragma unroll
        for (int u = 0; u < 4; ++u)
          v[u] = round_bf16(v[u], rounded + row + (j + u * kWarps) * rows);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        s[u] += v[u];
        if constexpr (kSquares) q[u] += v[u] * v[u];
      }
    }
    for (; j < end; j += kWarps) {
      float v = a[row + j * rows];
      if (rounded != nullptr) v = round_bf16(v, rounded + row + j * rows);
      s[0] += v;
      if constexpr (kSquares) q[0] += v * v;
    }
  }
  sums[warp][lane] = (s[0] + s[1]) + (s[2] + s[3]);
  if constexpr (kSquares) squares[warp][lane] = (q[0] + q[1]) + (q[2] + q[3]);
  __syncthreads();
  if (warp != 0 || row >= rows) return;
  float total = 0.0f, total_square = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    total += sums[w][lane];
    if constexpr (kSquares) total_square += squares[w][lane];
  }
  partial[chunk * rows + row] = total;
  if constexpr (kSquares) partial[(kChunks + chunk) * rows + row] = total_square;
}

// One warp per row: out[i * stride] (+)= alpha * the sum of its chunks' partials (each lane two
// chunks, then the warp's fixed shuffle order); squares likewise from the second half.
__global__ void row_sum_finish_kernel(const float* partial, Index rows, float alpha,
                                      bool accumulate, float* out, Index stride, float* squares) {
  static_assert(kChunks == 64, "two chunks per lane");
  const Index i = static_cast<Index>(blockIdx.x) * kFinishWarps + threadIdx.y;
  if (i >= rows) return;  // whole warps leave together
  const Index lane = threadIdx.x;
  const float sum =
      warp_reduce(partial[lane * rows + i] + partial[(lane + 32) * rows + i], SumOp{});
  if (lane == 0) {
    const float value = alpha * sum;
    out[i * stride] = accumulate ? out[i * stride] + value : value;
  }
  if (squares != nullptr) {
    const float* q = partial + kChunks * rows;
    const float square = warp_reduce(q[lane * rows + i] + q[(lane + 32) * rows + i], SumOp{});
    if (lane == 0) squares[i] = square;
  }
}

void finish(const float* partial, Index rows, float alpha, bool accumulate, float* out,
            Index stride, float* squares, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((rows + kFinishWarps - 1) / kFinishWarps));
  const dim3 block(32, kFinishWarps);
  row_sum_finish_kernel<<<grid, block, 0, stream>>>(partial, rows, alpha, accumulate, out, stride,
                                                    squares);
  KWM_CUDA_CHECK_LAUNCH();
}

template <bool kSquares>
void chunks(const float* a, Index rows, Index columns, float* partial, cudaStream_t stream,
            __nv_bfloat16* rounded = nullptr) {
  const Index per_chunk = (columns + kChunks - 1) / kChunks;
  const dim3 grid(static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock),
                  static_cast<unsigned>(kChunks));
  const dim3 block(kRowsPerBlock, kWarps);
  row_sum_chunks_kernel<kSquares>
      <<<grid, block, 0, stream>>>(a, rows, columns, per_chunk, partial, rounded);
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace

Index row_sums_workspace(Index rows) { return 2 * kChunks * rows; }

void row_sums(const float* a, Index rows, Index columns, float alpha, bool accumulate, float* out,
              Index stride, float* workspace, cudaStream_t stream) {
  if (rows == 0) return;
  chunks<false>(a, rows, columns, workspace, stream);
  finish(workspace, rows, alpha, accumulate, out, stride, nullptr, stream);
}

void round_bf16_row_sums(const float* a, Index rows, Index columns, __nv_bfloat16* rounded,
                         float alpha, float* out, Index stride, float* workspace,
                         cudaStream_t stream) {
  if (rows == 0) return;
  chunks<false>(a, rows, columns, workspace, stream, rounded);
  if (out != nullptr) finish(workspace, rows, alpha, false, out, stride, nullptr, stream);
}

void row_sums_and_squares(const float* a, Index rows, Index columns, float* sums, float* squares,
                          float* workspace, cudaStream_t stream) {
  if (rows == 0) return;
  chunks<true>(a, rows, columns, workspace, stream);
  finish(workspace, rows, 1.0f, false, sums, 1, squares, stream);
}

}  // namespace kwm::lm::cuda::kernels
