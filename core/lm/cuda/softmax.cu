// The two softmax kernels of the forward pass: the causal (masked) softmax of attention scores,
// one warp per query column, and the fused log-softmax cross entropy, one block per token.
#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/block_reduce.cuh"
#include "core/lm/cuda/kernels.cuh"
#include "core/lm/cuda/launch.cuh"
#include "core/lm/cuda/log_sum_exp.cuh"

namespace kwm::lm::cuda::kernels {
namespace {

constexpr int kWarpsPerBlock = kThreads / 32;

// Column q of each length x length matrix (S^T: row = key) holds the query's scores; keys are
// contiguous, so a warp reads them coalesced.
__global__ void causal_softmax_kernel(float* scores, Index length, Index columns) {
  const Index column = static_cast<Index>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (column >= columns) return;  // whole warps leave together
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const Index query = column % length;
  float* s = scores + column * length;
  float max = -INFINITY;
  for (Index key = lane; key <= query; key += 32) max = fmaxf(max, s[key]);
  max = warp_reduce(max, MaxOp{});
  float sum = 0.0f;
  for (Index key = lane; key <= query; key += 32) {
    const float e = expf(s[key] - max);
    s[key] = e;
    sum += e;
  }
  const float inverse = 1.0f / warp_reduce(sum, SumOp{});
  for (Index key = lane; key < length; key += 32) s[key] = key <= query ? s[key] * inverse : 0.0f;
}

constexpr int kVocabThreads = 256;

__global__ void token_nll_kernel(const float* logits, const std::int32_t* targets, double* nll,
                                 Index vocab) {
  __shared__ float partial_max[32];
  __shared__ double partial_sum[32];
  const Index n = blockIdx.x;
  const float* column = logits + n * vocab;
  const ColumnLogSumExp lse = column_log_sum_exp(column, vocab, partial_max, partial_sum);
  if (threadIdx.x == 0) nll[n] = lse.nll(column[targets[n]]);
}

// One block: each thread sums a strided subset in order, then the block reduction.
__global__ void sum_kernel(const double* x, Index count, double* total) {
  __shared__ double partial[32];
  double sum = 0.0;
  for (Index k = threadIdx.x; k < count; k += blockDim.x) sum += x[k];
  sum = block_reduce(sum, SumOp{}, partial);
  if (threadIdx.x == 0) *total = sum;
}

}  // namespace

void causal_softmax_columns(float* scores, Index length, Index count, cudaStream_t stream) {
  const Index columns = count * length;
  if (columns == 0) return;
  const Index blocks = (columns + kWarpsPerBlock - 1) / kWarpsPerBlock;
  causal_softmax_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(scores, length,
                                                                                columns);
  KWM_CUDA_CHECK_LAUNCH();
}

void cross_entropy(const float* logits, const std::int32_t* targets, double* nll, double* total,
                   Index vocab, Index columns, cudaStream_t stream) {
  if (columns > 0) {
    token_nll_kernel<<<static_cast<unsigned>(columns), kVocabThreads, 0, stream>>>(logits, targets,
                                                                                   nll, vocab);
    KWM_CUDA_CHECK_LAUNCH();
  }
  sum_kernel<<<1, 1024, 0, stream>>>(nll, columns, total);
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace kwm::lm::cuda::kernels
