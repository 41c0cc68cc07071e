// Counters every filter decision increments: applied updates and each kind of skip or repair.
#pragma once

#include <cstdint>

namespace kwm {

struct FilterCounters {
  std::int64_t updates = 0;            // updates applied to the state
  std::int64_t skips = 0;              // updates not applied, for any of the reasons below
  std::int64_t nonfinite = 0;          // skipped: NaN/Inf in H, e, R, a statistic or S
  std::int64_t cholesky_failures = 0;  // skipped: not positive definite after every jitter retry
  std::int64_t gated = 0;              // skipped: NIS above the chi-square gate (reject mode)
  std::int64_t inflated = 0;           // applied with R inflated by the gate (inflate mode)
  std::int64_t jitter_retries = 0;     // Cholesky attempts that needed added jitter
  std::int64_t eigen_clamps = 0;       // eigenvalues (or variances) moved by the floor/ceiling
  std::int64_t trace_caps = 0;         // times the trace cap scaled the covariance down

  FilterCounters& operator+=(const FilterCounters& other);
  bool operator==(const FilterCounters&) const = default;
};

inline FilterCounters& FilterCounters::operator+=(const FilterCounters& other) {
  updates += other.updates;
  skips += other.skips;
  nonfinite += other.nonfinite;
  cholesky_failures += other.cholesky_failures;
  gated += other.gated;
  inflated += other.inflated;
  jitter_retries += other.jitter_retries;
  eigen_clamps += other.eigen_clamps;
  trace_caps += other.trace_caps;
  return *this;
}

}  // namespace kwm
