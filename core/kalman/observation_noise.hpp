// Observation noise R (ALGORITHMS.md section 6): fixed, or adapted from the innovations by an
// exponential moving average (Sage-Husa covariance matching) with a floor.
#pragma once

#include <vector>

#include "core/backend/backend.hpp"
#include "core/kalman/config.hpp"

namespace kwm {

template <typename T>
class ObservationNoise {
 public:
  explicit ObservationNoise(const NoiseConfig& config);

  // R for an observation of m outputs, as an m x m tensor in `backend`'s memory.
  // Fixed: the matrix set by set_covariance, else variance I. Adaptive: diag(a) (the estimate
  // starts at variance I; the observation size must not change once adapting has begun).
  const Tensor<T>& covariance(Backend<T>& backend, Index m);

  // Fixed mode: use this m x m matrix (copied) as R from now on.
  void set_covariance(Backend<T>& backend, const Tensor<T>& r);

  // Adaptive mode, after an accepted update: for every output i
  //   a_i <- beta a_i + (1 - beta) (e_i^2 - (H P H^T)_ii),   R_ii = max(floor, a_i),
  // with e the innovation and H P H^T the predicted output covariance before the update
  // (so that E[e e^T] = H P H^T + R). A no-op in fixed mode.
  void adapt(const std::vector<T>& innovation, const std::vector<T>& predicted_variance);

  bool adaptive() const { return config_.mode == NoiseMode::adaptive; }
  // The current diagonal estimate a (adaptive mode; empty before the first covariance() call).
  const std::vector<T>& estimate() const { return estimate_; }
  // Checkpoint resume: the estimate as saved (empty: as before the first covariance() call).
  void restore_estimate(std::vector<T> estimate) {
    estimate_ = std::move(estimate);
    stale_ = true;
  }

 private:
  NoiseConfig config_;
  Tensor<T> r_;               // cached R
  bool user_matrix_ = false;  // fixed mode with a set_covariance matrix
  bool stale_ = true;         // r_ needs rebuilding from the estimate
  std::vector<T> estimate_;   // adaptive a_i (unfloored EMA)
};

}  // namespace kwm
