// The rls-head kernels: summed predicted probabilities, the pbar update and the Sherman-Morrison
// application of the mean-field softmax factor, all accumulated in double.
#include <algorithm>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/block_reduce.cuh"
#include "core/lm/cuda/launch.cuh"
#include "core/lm/cuda/rls_head_kernels.cuh"

namespace kwm::lm::cuda::kernels {
namespace {

// Enough chunks to fill the device at vocab 4096 (16 x 64 blocks), few enough that the second
// pass over `partial` stays short.
constexpr Index kRlsProbabilityChunks = 64;

// Thread v of chunk c (blockIdx.y): neighbouring threads read neighbouring rows of one column, so
// the reads coalesce; each thread sums its chunk's columns in increasing order.
__global__ void rls_probability_sums_kernel(const float* innovation, const std::int32_t* targets,
                                            double* partial, Index vocab, Index columns,
                                            Index chunk) {
  const Index v = global_thread();
  if (v >= vocab) return;
  const Index c = blockIdx.y;
  const Index begin = c * chunk;
  const Index end = begin + chunk < columns ? begin + chunk : columns;
  double sum = 0.0;
  for (Index n = begin; n < end; ++n) {
    const double onehot = targets[n] == v ? 1.0 : 0.0;
    sum += onehot - static_cast<double>(innovation[v + n * vocab]);
  }
  partial[v + c * vocab] = sum;
}

__global__ void rls_mean_probability_kernel(const double* partial, const double* pbar,
                                            double* pbar_out, double* inverse_diagonal, double* u,
                                            Index vocab, double tokens, Index chunks,
                                            bool has_previous, double ema, double delta) {
  for (Index v = global_thread(); v < vocab; v += grid_threads()) {
    double sum = 0.0;
    for (Index c = 0; c < chunks; ++c) sum += partial[v + c * vocab];
    const double batch_mean = sum / tokens;
    const double mean = has_previous ? ema * pbar[v] + (1.0 - ema) * batch_mean : batch_mean;
    const double inverse = 1.0 / (mean + delta);
    pbar_out[v] = mean;
    inverse_diagonal[v] = inverse;
    u[v] = inverse * mean;
  }
}

// One block per row j of x: scale_j = (u^T x(j, :)^T) / (1 - pbar^T u).
__global__ void rls_sherman_morrison_scale_kernel(const float* x, Index vocab, Index ld,
                                                  const double* pbar, const double* u,
                                                  double* scale) {
  __shared__ double partial[32];
  const Index j = blockIdx.x;
  double projection = 0.0;
  double overlap = 0.0;
  for (Index v = threadIdx.x; v < vocab; v += blockDim.x) {
    projection += u[v] * static_cast<double>(x[j + v * ld]);
    overlap += pbar[v] * u[v];
  }
  projection = block_reduce(projection, SumOp{}, partial);
  overlap = block_reduce(overlap, SumOp{}, partial);
  if (threadIdx.x == 0) scale[j] = projection / (1.0 - overlap);
}

__global__ void rls_sherman_morrison_apply_kernel(float* x, Index rows, Index vocab, Index ld,
                                                  const double* inverse_diagonal, const double* u,
                                                  const double* scale) {
  const Index count = rows * vocab;
  for (Index k = global_thread(); k < count; k += grid_threads()) {
    const Index j = k % rows;
    const Index v = k / rows;
    float& entry = x[j + v * ld];
    entry = static_cast<float>(static_cast<double>(entry) * inverse_diagonal[v] + u[v] * scale[j]);
  }
}

}  // namespace

Index probability_chunks(Index columns) {
  return std::max<Index>(1, std::min(kRlsProbabilityChunks, columns));
}

void probability_row_sums(const float* innovation, const std::int32_t* targets, double* partial,
                          Index vocab, Index columns, cudaStream_t stream) {
  const Index chunks = probability_chunks(columns);
  const Index chunk = (columns + chunks - 1) / chunks;
  const dim3 grid(static_cast<unsigned>((vocab + kThreads - 1) / kThreads),
                  static_cast<unsigned>(chunks));
  rls_probability_sums_kernel<<<grid, kThreads, 0, stream>>>(innovation, targets, partial, vocab,
                                                             columns, chunk);
  KWM_CUDA_CHECK_LAUNCH();
}

void mean_probability_update(const double* partial, Index chunks, const double* pbar,
                             double* pbar_out, double* inverse_diagonal, double* u, Index vocab,
                             double tokens, bool has_previous, double ema, double delta,
                             cudaStream_t stream) {
  rls_mean_probability_kernel<<<grid_for(vocab), kThreads, 0, stream>>>(
      partial, pbar, pbar_out, inverse_diagonal, u, vocab, tokens, chunks, has_previous, ema,
      delta);
  KWM_CUDA_CHECK_LAUNCH();
}

void apply_mean_field_inverse(float* x, Index rows, Index vocab, Index ld, const double* pbar,
                              const double* inverse_diagonal, const double* u, double* scale,
                              cudaStream_t stream) {
  if (rows == 0 || vocab == 0) return;
  rls_sherman_morrison_scale_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      x, vocab, ld, pbar, u, scale);
  KWM_CUDA_CHECK_LAUNCH();
  rls_sherman_morrison_apply_kernel<<<grid_for(rows * vocab), kThreads, 0, stream>>>(
      x, rows, vocab, ld, inverse_diagonal, u, scale);
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace kwm::lm::cuda::kernels
