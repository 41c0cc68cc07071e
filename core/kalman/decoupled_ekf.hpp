// The global-innovation decoupled EKF step (ALGORITHMS.md section 2) over any mix of dense and
// diagonal covariance blocks: U_b = P_b H_b^T, S = R + sum_b H_b U_b (one all-reduce),
// S = L L^T, K_b = U_b S^-1, m_b += K_b e, P_b -= K_b U_b^T. One block: the global EKF;
// 1 x 1 blocks or a diagonal block: the fully decoupled EKF.
#pragma once

#include <limits>
#include <span>
#include <vector>

#include "core/backend/backend.hpp"
#include "core/kalman/all_reduce.hpp"
#include "core/kalman/config.hpp"
#include "core/kalman/filter_counters.hpp"
#include "core/kalman/innovation_gate.hpp"
#include "core/kalman/observation_noise.hpp"
#include "core/kalman/parameter_block.hpp"

namespace kwm {

// One block's part of an observation: the block and its Jacobian H_b = d yhat / d theta_b (m x
// n_b).
template <typename T>
struct BlockObservation {
  ParameterBlock<T>* block = nullptr;
  Tensor<T> jacobian;
};

enum class UpdateStatus {
  applied,            // state updated (possibly with the gate's inflation)
  skipped_nonfinite,  // NaN/Inf in H, e or R (on any rank) or in S: state untouched
  skipped_cholesky,   // S not positive definite after every jitter retry: state untouched
  rejected_by_gate,   // NIS above the chi-square gate in reject mode: state untouched
};

template <typename T>
struct UpdateReport {
  UpdateStatus status = UpdateStatus::applied;
  // NIS = e^T S^-1 e with S = R + sum H P H^T (+ jitter), before any gate inflation; NaN when
  // the update was skipped before S was factored.
  T nis = std::numeric_limits<T>::quiet_NaN();
  int jitter_retries = 0;
  T jitter = T(0);
  double gate_threshold = 0.0;  // 0 when gating is off
  double inflation = 1.0;       // c of S' = c S when the gate inflated
  bool applied() const { return status == UpdateStatus::applied; }
};

template <typename T>
class DecoupledEkf {
 public:
  // `reduce` sums the m x m partial H P H^T over ranks (empty: single process).
  DecoupledEkf(Backend<T>& backend, const UpdateConfig& config, AllReduceSum<T> reduce = {});

  // One update with observation noise R (m x m) and innovation e = y - yhat (m x 1), identical
  // on every rank. Inputs are checked for NaN/Inf before any state changes; a rank with a bad
  // local Jacobian poisons its partial sum with NaN so that every rank skips together. Each phase
  // is one batched backend call over the blocks; the host waits for the device a fixed number of
  // times per update (S's finiteness, the Cholesky, the NIS), never per block.
  UpdateReport<T> update(std::span<const BlockObservation<T>> observations,
                         const Tensor<T>& innovation, const Tensor<T>& r);

  // The same with R from `noise`; an adaptive noise model learns from every update that was
  // applied without gate intervention.
  UpdateReport<T> update(std::span<const BlockObservation<T>> observations,
                         const Tensor<T>& innovation, ObservationNoise<T>& noise);

  // Totals over every update this object ran (blocks keep their own counters too).
  const FilterCounters& counters() const { return counters_; }
  // Sum of NIS over applied and gated updates, and how many: the consistency figure (mean m).
  double nis_sum() const { return nis_sum_; }
  std::int64_t nis_count() const { return nis_count_; }
  // H P H^T summed over blocks and ranks in the last update (NaN after a non-finite skip).
  const Tensor<T>& predicted_output_covariance() const { return partial_; }
  // K_b of observation i in the last update that formed one (null before the first).
  const Tensor<T>* last_gain(std::size_t i) const {
    return i < workspace_.size() && !workspace_[i].gain.empty() ? &workspace_[i].gain : nullptr;
  }
  // Checkpoint resume: the totals above as they were when the checkpoint was written.
  void restore_totals(const FilterCounters& counters, double nis_sum, std::int64_t nis_count) {
    counters_ = counters;
    nis_sum_ = nis_sum;
    nis_count_ = nis_count;
  }

 private:
  struct Workspace {
    Tensor<T> u;       // U_b = P_b H_b^T, n_b x m
    Tensor<T> gain;    // K_b, n_b x m
    Tensor<T> joseph;  // -K_b S, n_b x m
  };

  UpdateReport<T> skip(std::span<const BlockObservation<T>> observations, UpdateReport<T> report);
  void validate(std::span<const BlockObservation<T>> observations, const Tensor<T>& innovation,
                const Tensor<T>& r) const;
  void reserve(std::span<const BlockObservation<T>> observations, Index m);
  void downdate_dense_blocks(std::span<const BlockObservation<T>> observations);
  Tensor<T>& ensure(Tensor<T>& t, Index rows, Index cols);

  Backend<T>& backend_;
  UpdateConfig config_;
  AllReduceSum<T> reduce_;
  InnovationGate gate_;
  FilterCounters counters_;
  double nis_sum_ = 0.0;
  std::int64_t nis_count_ = 0;

  std::vector<Workspace> workspace_;
  Tensor<T> identity_;  // I_m: H^T = H^T I_m for diagonal blocks
  Tensor<T> partial_;   // sum_b H_b U_b (local, then all-reduced)
  Tensor<T> s_;         // S
  Tensor<T> factor_;    // chol(S)
  Tensor<T> solved_;    // S^-1 e
  Tensor<T> diagonal_;  // diag(H P H^T) for adaptive R
};

}  // namespace kwm
