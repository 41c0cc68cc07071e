// The kwm-ensemble head kernels: per-point final layer norm, merged low-rank heads, per-point
// head bias, and the per-token observable (one block per token column, the log-sum-exp in
// double).
#include <cmath>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/ensemble_kernels.cuh"
#include "core/lm/cuda/launch.cuh"
#include "core/lm/cuda/log_sum_exp.cuh"

namespace kwm::lm::cuda::kernels {
namespace {

__global__ void member_layer_norm_kernel(const float* normalized, const float* points, Index stride,
                                         Index gain_at, Index bias_at, float* out, Index d,
                                         Index tokens, Index total) {
  for (Index k = global_thread(); k < total; k += grid_threads()) {
    const Index i = k % d;
    const Index column = k / d;
    const Index g = column / tokens;
    const Index n = column % tokens;
    const float* point = points + g * stride;
    out[k] = point[gain_at + i] * normalized[n * d + i] + point[bias_at + i];
  }
}

__global__ void merge_low_rank_kernel(const float* base, const float* points, Index stride,
                                      Index a_at, Index rank, float* weights, Index vocab, Index d,
                                      Index total) {
  const Index size = vocab * d;
  for (Index k = global_thread(); k < total; k += grid_threads()) {
    const Index g = k / size;
    const Index e = k % size;
    const Index v = e % vocab;
    const Index i = e / vocab;
    const float* a = points + g * stride + a_at;  // rank x d
    const float* b = a + rank * d;                // vocab x rank
    float w = base[e];
    for (Index r = 0; r < rank; ++r) w = fmaf(b[v + r * vocab], a[r + i * rank], w);
    weights[k] = w;
  }
}

__global__ void add_member_bias_kernel(float* logits, const float* points, Index stride,
                                       Index bias_at, Index vocab, Index tokens, Index total) {
  for (Index k = global_thread(); k < total; k += grid_threads()) {
    const Index v = k % vocab;
    const Index g = k / (vocab * tokens);
    logits[k] += points[g * stride + bias_at + v];
  }
}

constexpr int kObservableThreads = 256;

__global__ void token_observables_kernel(const float* logits, const std::int32_t* targets,
                                         double* out, Index vocab, Index tokens,
                                         Index observed_points, int observed) {
  __shared__ float partial_max[32];
  __shared__ double partial_sum[32];
  const Index c = blockIdx.x;
  const float* column = logits + c * vocab;
  const ColumnLogSumExp lse = column_log_sum_exp(column, vocab, partial_max, partial_sum);
  if (threadIdx.x != 0) return;
  const double nll = lse.nll(column[targets[c % tokens]]);
  const Index g = c / tokens;
  if (g >= observed_points || observed == static_cast<int>(TokenObservable::nll)) {
    out[c] = nll;
  } else if (observed == static_cast<int>(TokenObservable::nll_residual)) {
    out[c] = sqrt(2.0 * fmax(nll, 0.0));
  } else {
    out[c] = exp(-fmax(nll, 0.0));
  }
}

}  // namespace

void member_layer_norm(const float* normalized, const float* points, Index stride, Index gain_at,
                       Index bias_at, float* out, Index d, Index tokens, Index count,
                       cudaStream_t stream) {
  const Index total = d * tokens * count;
  if (total == 0) return;
  member_layer_norm_kernel<<<grid_for(total), kThreads, 0, stream>>>(
      normalized, points, stride, gain_at, bias_at, out, d, tokens, total);
  KWM_CUDA_CHECK_LAUNCH();
}

void merge_low_rank_heads(const float* base, const float* points, Index stride, Index a_at,
                          Index rank, float* weights, Index vocab, Index d, Index count,
                          cudaStream_t stream) {
  const Index total = vocab * d * count;
  if (total == 0) return;
  merge_low_rank_kernel<<<grid_for(total), kThreads, 0, stream>>>(base, points, stride, a_at, rank,
                                                                  weights, vocab, d, total);
  KWM_CUDA_CHECK_LAUNCH();
}

void add_member_bias(float* logits, const float* points, Index stride, Index bias_at, Index vocab,
                     Index tokens, Index count, cudaStream_t stream) {
  const Index total = vocab * tokens * count;
  if (total == 0) return;
  add_member_bias_kernel<<<grid_for(total), kThreads, 0, stream>>>(logits, points, stride, bias_at,
                                                                   vocab, tokens, total);
  KWM_CUDA_CHECK_LAUNCH();
}

void token_observables(const float* logits, const std::int32_t* targets, double* out, Index vocab,
                       Index tokens, Index count, Index observed_points, TokenObservable observed,
                       cudaStream_t stream) {
  const Index columns = tokens * count;
  if (columns == 0) return;
  token_observables_kernel<<<static_cast<unsigned>(columns), kObservableThreads, 0, stream>>>(
      logits, targets, out, vocab, tokens, observed_points, static_cast<int>(observed));
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace kwm::lm::cuda::kernels
