// Shared-row blocks for linear layers z = W a (ALGORITHMS.md section 4): rows of W independent
// with one input covariance P, cov(vec W) = I (x) P, observations of z with R = r I. Exact and
// closed under the update; O(d_in^2) per sample, d_in^2 memory.
#pragma once

#include <cstdint>

#include "core/backend/backend.hpp"
#include "core/kalman/all_reduce.hpp"
#include "core/kalman/config.hpp"
#include "core/kalman/decoupled_ekf.hpp"
#include "core/kalman/filter_counters.hpp"
#include "core/kalman/parameter_block.hpp"

namespace kwm {

template <typename T>
struct SharedRowStatistics {
  Tensor<T> input_precision;  // (1/r) sum a a^T      (d_in x d_in)
  Tensor<T> cross;            // (1/r) sum z* a^T     (d_out x d_in)
  std::int64_t samples = 0;   // accumulated samples (this rank)
  std::int64_t rejected = 0;  // batches refused for NaN/Inf (this rank)
};

template <typename T>
class SharedRowRls {
 public:
  // `reduce` sums batched statistics over data-parallel ranks (empty: single process).
  SharedRowRls(Backend<T>& backend, const JitterConfig& jitter, AllReduceSum<T> reduce = {});

  // Per sample on a covariance-form block, with u = P a:
  //   k = u / (r lambda + a^T u);  W <- W + (z* - W a) k^T;  P <- (P - (k u^T + u k^T)/2) / lambda
  // (the symmetric form of (P - k a^T P) / lambda). a is d_in x 1, target z* is d_out x 1,
  // r > 0, lambda in (0, 1]. Skips (counted, block untouched) on NaN/Inf in a or z*, or when
  // r lambda + a^T P a is not positive and finite.
  UpdateStatus update(ParameterBlock<T>& block, const Tensor<T>& a, const Tensor<T>& target, T r,
                      T lambda = T(1));

  SharedRowStatistics<T> zero_statistics(Index d_out, Index d_in);

  // stats += ((1/r) A A^T, (1/r) Z A^T) for a batch of N samples: inputs A (d_in x N), targets
  // Z (d_out x N). Returns false (stats unchanged, counted in stats.rejected) on NaN/Inf.
  bool accumulate(SharedRowStatistics<T>& stats, const Tensor<T>& inputs, const Tensor<T>& targets,
                  T r);

  // All-reduces the statistics, then on an information-form block
  //   L <- lambda L + input_precision;  B <- lambda B + cross;  W = B L^-1 (Cholesky solve).
  // Block untouched (counted) when the statistics are not finite or L is not positive definite.
  UpdateStatus apply(ParameterBlock<T>& block, SharedRowStatistics<T>& stats, T lambda = T(1));

  const FilterCounters& counters() const { return counters_; }

 private:
  UpdateStatus skip(ParameterBlock<T>& block, UpdateStatus status, int jitter_retries = 0);
  Tensor<T>& ensure(Tensor<T>& t, Index rows, Index cols);

  Backend<T>& backend_;
  JitterConfig jitter_;
  AllReduceSum<T> reduce_;
  FilterCounters counters_;
  Tensor<T> u_;         // P a
  Tensor<T> gain_;      // k
  Tensor<T> residual_;  // z* - W a
};

}  // namespace kwm
