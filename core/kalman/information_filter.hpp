// Information form (ALGORITHMS.md section 3) for dense blocks: sufficient statistics
// sum H^T R^-1 H and sum H^T R^-1 e are accumulated (and all-reduced across data-parallel ranks),
// then L <- lambda L + sum H^T R^-1 H and m <- m + L^-1 sum H^T R^-1 e by a Cholesky solve.
// For blocks linear in their parameters this is the exact batch (= serial Kalman) posterior; for
// nonlinear models it is one Gauss-Newton / EKF step at the linearisation point where every e
// and H of the batch were computed.
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
struct InformationStatistics {
  Tensor<T> precision;            // sum_n H_n^T R_n^-1 H_n   (n x n)
  Tensor<T> vector;               // sum_n H_n^T R_n^-1 e_n   (n x 1)
  std::int64_t observations = 0;  // accumulated observations (this rank)
  std::int64_t rejected = 0;      // observations refused for NaN/Inf or a non-SPD R (this rank)
};

template <typename T>
class InformationFilter {
 public:
  // `reduce` sums the statistics over data-parallel ranks (empty: single process).
  InformationFilter(Backend<T>& backend, const JitterConfig& jitter, AllReduceSum<T> reduce = {});

  // Zeroed statistics for a block of n parameters.
  InformationStatistics<T> zero_statistics(Index n);

  // stats += (H^T R^-1 H, H^T R^-1 e) for H (m x n), e (m x 1), R (m x m, SPD). R^-1 is applied
  // through R's Cholesky factor. Returns false, leaving stats unchanged and counting the
  // observation in stats.rejected, when H, e or R hold NaN/Inf or R is not positive definite.
  bool accumulate(InformationStatistics<T>& stats, const Tensor<T>& h, const Tensor<T>& e,
                  const Tensor<T>& r);

  // All-reduces the statistics (precision as a full matrix, then the vector), then
  // L <- lambda L + precision and m <- m + L^-1 vector on a dense information-form block.
  // The block is untouched when the reduced statistics are not finite or lambda L + precision
  // is not positive definite after the jitter retries (status says which; counted).
  UpdateStatus apply(ParameterBlock<T>& block, InformationStatistics<T>& stats, T lambda = T(1));

  const FilterCounters& counters() const { return counters_; }

 private:
  Backend<T>& backend_;
  JitterConfig jitter_;
  AllReduceSum<T> reduce_;
  FilterCounters counters_;
};

}  // namespace kwm
