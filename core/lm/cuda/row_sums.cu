// Row sums of a column-major rows x columns matrix over all its columns (the tokens): the bias and
// layer-norm parts of the transposed pass and the learner's statistics. Two launches in a fixed
// order, so the sums do not depend on scheduling: the columns split into kChunks slices, each block
// sums 32 rows of one slice (a warp reads 32 consecutive floats of a column, 8 warps take every
// 8th column) into partial[chunk][row]; then one thread per row adds its chunks in order. A
// cuBLAS SGEMV with a ones vector did this at about a third of the copy rate, plus a split-K
// reduce launch (bench/lm_cuda/profile_step_device.sh).
#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/launch.cuh"
#include "core/lm/cuda/transpose_kernels.cuh"

namespace kwm::lm::cuda::kernels {
namespace {

constexpr Index kChunks = 32;
constexpr int kRowsPerBlock = 32;
constexpr int kWarps = 8;

// partial (chunks x rows, twice when kSquares: sums, then sums of squares).
template <bool kSquares>
__global__ void row_sum_chunks_kernel(const float* a, Index rows, Index columns, Index per_chunk,
                                      float* partial) {
  __shared__ float sums[kWarps][kRowsPerBlock + 1];
  __shared__ float squares[kWarps][kRowsPerBlock + 1];
  const int lane = static_cast<int>(threadIdx.x);
  const int warp = static_cast<int>(threadIdx.y);
  const Index row = static_cast<Index>(blockIdx.x) * kRowsPerBlock + lane;
  const Index chunk = blockIdx.y;
  const Index begin = chunk * per_chunk;
  const Index end = begin + per_chunk < columns ? begin + per_chunk : columns;
  float sum = 0.0f, square = 0.0f;
  if (row < rows) {
    for (Index j = begin + warp; j < end; j += kWarps) {
      const float v = a[row + j * rows];
      sum += v;
      if constexpr (kSquares) square += v * v;
    }
  }
  sums[warp][lane] = sum;
  if constexpr (kSquares) squares[warp][lane] = square;
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

// out[i * stride] (+)= alpha * sum of the chunks' partials; squares likewise from the second half.
__global__ void row_sum_finish_kernel(const float* partial, Index rows, float alpha,
                                      bool accumulate, float* out, Index stride, float* squares) {
  for (Index i = global_thread(); i < rows; i += grid_threads()) {
    float sum = 0.0f;
    for (Index c = 0; c < kChunks; ++c) sum += partial[c * rows + i];
    const float value = alpha * sum;
    out[i * stride] = accumulate ? out[i * stride] + value : value;
    if (squares != nullptr) {
      float square = 0.0f;
      for (Index c = 0; c < kChunks; ++c) square += partial[(kChunks + c) * rows + i];
      squares[i] = square;
    }
  }
}

template <bool kSquares>
void chunks(const float* a, Index rows, Index columns, float* partial, cudaStream_t stream) {
  const Index per_chunk = (columns + kChunks - 1) / kChunks;
  const dim3 grid(static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock),
                  static_cast<unsigned>(kChunks));
  const dim3 block(kRowsPerBlock, kWarps);
  row_sum_chunks_kernel<kSquares><<<grid, block, 0, stream>>>(a, rows, columns, per_chunk, partial);
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace

Index row_sums_workspace(Index rows) { return 2 * kChunks * rows; }

void row_sums(const float* a, Index rows, Index columns, float alpha, bool accumulate, float* out,
              Index stride, float* workspace, cudaStream_t stream) {
  if (rows == 0) return;
  chunks<false>(a, rows, columns, workspace, stream);
  row_sum_finish_kernel<<<grid_for(rows), kThreads, 0, stream>>>(workspace, rows, alpha, accumulate,
                                                                 out, stride, nullptr);
  KWM_CUDA_CHECK_LAUNCH();
}

void row_sums_and_squares(const float* a, Index rows, Index columns, float* sums, float* squares,
                          float* workspace, cudaStream_t stream) {
  if (rows == 0) return;
  chunks<true>(a, rows, columns, workspace, stream);
  row_sum_finish_kernel<<<grid_for(rows), kThreads, 0, stream>>>(workspace, rows, 1.0f, false, sums,
                                                                 1, squares);
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace kwm::lm::cuda::kernels
