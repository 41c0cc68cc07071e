// The max-shifted log-sum-exp of one column of logits, one block per column, as the per-token
// cross-entropy kernels compute it: the column max in float, then sum_v exp(l_v - max) with each
// term expf in float and the sum accumulated in double (both through block_reduce, so in a fixed
// order); the NLL of a target is log(sum) - (l_target - max) in double. Used by softmax.cu
// (token_nll_kernel, the forward pass's cross entropy) and ensemble_kernels.cu
// (token_observables_kernel).
//
// Not by transpose.cu's softmax_innovation_kernel (the kwm-linearized and rls-head steps): its
// terms are exp in double of the double-converted difference, not expf in float, so this sum
// would change its results in the last bits; it shares the same max and NLL expression.
#pragma once

#include <cuda_runtime.h>

#include <cmath>

#include "core/lm/cuda/block_reduce.cuh"
#include "core/lm/cuda/kernels.cuh"

namespace kwm::lm::cuda::kernels {

struct ColumnLogSumExp {
  float max;   // max_v l_v
  double sum;  // sum_v exp(l_v - max)

  // -log softmax(l)_target from the target's logit.
  __device__ double nll(float target_logit) const {
    return log(sum) - (static_cast<double>(target_logit) - static_cast<double>(max));
  }
};

// Every thread of the block calls it and gets the result (blockDim.x as block_reduce requires);
// partial_max and partial_sum are __shared__ arrays of at least 32.
__device__ inline ColumnLogSumExp column_log_sum_exp(const float* column, Index vocab,
                                                     float* partial_max, double* partial_sum) {
  float max = -INFINITY;
  for (Index v = threadIdx.x; v < vocab; v += blockDim.x) max = fmaxf(max, column[v]);
  max = block_reduce(max, MaxOp{}, partial_max);
  double sum = 0.0;
  for (Index v = threadIdx.x; v < vocab; v += blockDim.x) {
    sum += static_cast<double>(expf(column[v] - max));
  }
  sum = block_reduce(sum, SumOp{}, partial_sum);
  return {max, sum};
}

}  // namespace kwm::lm::cuda::kernels
