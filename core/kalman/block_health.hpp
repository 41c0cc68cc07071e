// Per-block health figures of ALGORITHMS.md section 8: trace, extreme eigenvalues (or
// variances), condition number and the block's filter counters, always in covariance terms.
#pragma once

#include <string>

#include "core/backend/backend.hpp"
#include "core/kalman/filter_counters.hpp"
#include "core/kalman/parameter_block.hpp"

namespace kwm {

struct BlockHealth {
  BlockId id = 0;
  BlockKind kind = BlockKind::dense;
  Form form = Form::covariance;
  bool finite = true;           // mean and covariance free of NaN/Inf
  double trace = 0.0;           // trace(P); shared-row: of the input covariance P
  double min_eigenvalue = 0.0;  // of P (diagonal blocks: the smallest variance)
  double max_eigenvalue = 0.0;
  double condition = 0.0;  // max / min eigenvalue; +inf when min <= 0
  FilterCounters counters;
};

// Dense and shared-row blocks use Backend::symmetric_eigenvalues (information form: of L,
// inverted), diagonal blocks their variances. Downloads n values: meant for logging intervals.
template <typename T>
BlockHealth block_health(Backend<T>& backend, const ParameterBlock<T>& block);

// One log line: "block 3 dense/covariance trace=... eig=[min, max] cond=... updates=... skips=...".
std::string to_string(const BlockHealth& health);

}  // namespace kwm
