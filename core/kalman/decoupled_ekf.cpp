// The DEKF step in four phases: local U_b and partial sums, the all-reduce, the jittered
// factorisation with NIS and gating, then the local gain, mean and covariance updates. The
// per-block work of phases 1 and 4 goes to the backend's batched operations (one launch per group
// of equally sized blocks on a GPU; the same per-block loop as before on the CPU).
#include "core/kalman/decoupled_ekf.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "core/backend/host_transfer.hpp"
#include "core/kalman/covariance_downdate.hpp"
#include "core/kalman/eigenvalue_clamp.hpp"
#include "core/kalman/jittered_cholesky.hpp"

namespace kwm {

template <typename T>
DecoupledEkf<T>::DecoupledEkf(Backend<T>& backend, const UpdateConfig& config,
                              AllReduceSum<T> reduce)
    : backend_(backend), config_(config), reduce_(std::move(reduce)), gate_(config.gating) {
  config_.validate();
}

template <typename T>
Tensor<T>& DecoupledEkf<T>::ensure(Tensor<T>& t, Index rows, Index cols) {
  if (t.rows() != rows || t.cols() != cols) t = backend_.allocate(rows, cols);
  return t;
}

template <typename T>
void DecoupledEkf<T>::validate(std::span<const BlockObservation<T>> observations,
                               const Tensor<T>& innovation, const Tensor<T>& r) const {
  const Index m = innovation.rows();
  if (m == 0 || innovation.cols() != 1) {
    std::ostringstream message;
    message << "DEKF update: innovation must be m x 1 with m > 0; got " << innovation.rows()
            << " x " << innovation.cols();
    throw std::invalid_argument(message.str());
  }
  if (r.rows() != m || r.cols() != m) {
    std::ostringstream message;
    message << "DEKF update: R must be " << m << " x " << m << "; got " << r.rows() << " x "
            << r.cols();
    throw std::invalid_argument(message.str());
  }
  for (const BlockObservation<T>& observation : observations) {
    const ParameterBlock<T>* block = observation.block;
    if (block == nullptr) throw std::invalid_argument("DEKF update: null block");
    if (block->form != Form::covariance || block->kind == BlockKind::shared_row) {
      std::ostringstream message;
      message << "DEKF update: block " << block->id << " is " << to_string(block->kind) << " in "
              << to_string(block->form)
              << " form; the DEKF step takes dense or diagonal blocks in covariance form "
                 "(shared-row blocks use SharedRowRls, information form InformationFilter)";
      throw std::invalid_argument(message.str());
    }
    const Tensor<T>& h = observation.jacobian;
    if (h.rows() != m || h.cols() != block->size()) {
      std::ostringstream message;
      message << "DEKF update: Jacobian of block " << block->id << " must be " << m << " x "
              << block->size() << "; got " << h.rows() << " x " << h.cols();
      throw std::invalid_argument(message.str());
    }
  }
}

template <typename T>
void DecoupledEkf<T>::reserve(std::span<const BlockObservation<T>> observations, Index m) {
  if (workspace_.size() < observations.size()) workspace_.resize(observations.size());
  for (std::size_t b = 0; b < observations.size(); ++b) {
    const Index n = observations[b].block->size();
    ensure(workspace_[b].u, n, m);
    ensure(workspace_[b].gain, n, m);
    if (config_.safeguards.joseph) ensure(workspace_[b].joseph, n, m);
  }
  if (identity_.rows() != m) {
    identity_ = to_backend(backend_, HostMatrix<T>::Identity(m, m));
  }
  ensure(partial_, m, m);
  ensure(s_, m, m);
  ensure(factor_, m, m);
  ensure(solved_, m, 1);
  ensure(diagonal_, m, 1);
}

template <typename T>
UpdateReport<T> DecoupledEkf<T>::skip(std::span<const BlockObservation<T>> observations,
                                      UpdateReport<T> report) {
  FilterCounters delta;
  delta.skips = 1;
  switch (report.status) {
    case UpdateStatus::skipped_nonfinite:
      delta.nonfinite = 1;
      break;
    case UpdateStatus::skipped_cholesky:
      delta.cholesky_failures = 1;
      break;
    case UpdateStatus::rejected_by_gate:
      delta.gated = 1;
      break;
    case UpdateStatus::applied:
      break;
  }
  delta.jitter_retries = report.jitter_retries;
  counters_ += delta;
  for (const BlockObservation<T>& observation : observations) observation.block->counters += delta;
  return report;
}

// downdate_covariance's dense forms (covariance_downdate.hpp), each step batched over the dense
// blocks: plain P - (K U^T + U K^T)/2, or Joseph P - K U^T - U K^T + K S K^T as two plain
// downdates, J = -K S, and P - (J K^T + K J^T)/2.
template <typename T>
void DecoupledEkf<T>::downdate_dense_blocks(std::span<const BlockObservation<T>> observations) {
  Tensors<T> p, joseph;
  ConstTensors<T> k, u, j, s;
  for (std::size_t b = 0; b < observations.size(); ++b) {
    ParameterBlock<T>& block = *observations[b].block;
    if (block.kind != BlockKind::dense) continue;
    Workspace& w = workspace_[b];
    p.push_back(&block.covariance);
    k.push_back(&w.gain);
    u.push_back(&w.u);
    joseph.push_back(&w.joseph);
    j.push_back(&w.joseph);
    s.push_back(&s_);
  }
  backend_.riccati_downdate_batched(p, k, u);
  if (!config_.safeguards.joseph) return;
  backend_.riccati_downdate_batched(p, k, u);
  backend_.gemm_batched(Op::none, Op::none, T(-1), k, s, T(0), joseph);
  backend_.riccati_downdate_batched(p, j, k);
}

template <typename T>
UpdateReport<T> DecoupledEkf<T>::update(std::span<const BlockObservation<T>> observations,
                                        const Tensor<T>& innovation, const Tensor<T>& r) {
  validate(observations, innovation, r);
  const Index m = innovation.rows();
  reserve(observations, m);
  UpdateReport<T> report;

  // Phase 1: U_b = P_b H_b^T (dense blocks in one batched call, diagonal ones as diag(p) H^T),
  // then the local partial sum of H_b U_b in one call, summed in observation order.
  ConstTensors<T> dense_p, dense_h, diagonal_h, all_h, all_u;
  Tensors<T> dense_u, diagonal_u;
  for (std::size_t b = 0; b < observations.size(); ++b) {
    const ParameterBlock<T>& block = *observations[b].block;
    const Tensor<T>& h = observations[b].jacobian;
    Tensor<T>& u = workspace_[b].u;
    if (block.kind == BlockKind::dense) {
      dense_p.push_back(&block.covariance);
      dense_h.push_back(&h);
      dense_u.push_back(&u);
    } else {
      diagonal_h.push_back(&h);
      diagonal_u.push_back(&u);
    }
    all_h.push_back(&h);
    all_u.push_back(&u);
  }
  backend_.gemm_batched(Op::none, Op::transpose, T(1), dense_p, dense_h, T(0), dense_u);
  const ConstTensors<T> identities(diagonal_h.size(), &identity_);
  backend_.gemm_batched(Op::transpose, Op::none, T(1), diagonal_h, identities, T(0),
                        diagonal_u);  // H^T
  for (std::size_t b = 0, d = 0; b < observations.size(); ++b) {
    if (observations[b].block->kind != BlockKind::dense) {
      backend_.scale_rows(observations[b].block->covariance, *diagonal_u[d++]);  // diag(p) H^T
    }
  }
  backend_.gemm_sum(Op::none, Op::none, T(1), all_h, all_u, T(0), partial_);

  // The input check, on the device: no NaN/Inf may reach the state. e and R are the same on every
  // rank; H_b is local. A bad input poisons the partial sum with NaN, which the all-reduce carries
  // to every rank, so all ranks take the same collectives and skip together on the one host read of
  // S's finiteness below.
  ConstTensors<T> checked{&innovation, &r};
  checked.insert(checked.end(), all_h.begin(), all_h.end());
  backend_.poison_unless_finite(checked, partial_);

  // Phase 2: S = R + sum over blocks and ranks.
  all_reduce_sum(reduce_, partial_);
  backend_.copy(partial_, s_);
  backend_.axpy(T(1), r, s_);
  if (!backend_.all_finite(s_)) {
    report.status = UpdateStatus::skipped_nonfinite;
    return skip(observations, report);
  }
  backend_.symmetrize(s_);

  // Phase 3: S = L L^T with escalating jitter, NIS, gate.
  const CholeskyOutcome<T> factored = jittered_cholesky(backend_, s_, factor_, config_.jitter);
  report.jitter_retries = factored.retries;
  report.jitter = factored.jitter;
  if (!factored.ok) {
    report.status = UpdateStatus::skipped_cholesky;
    return skip(observations, report);
  }
  if (factored.jitter > T(0)) backend_.add_identity(factored.jitter, s_);
  backend_.copy(innovation, solved_);
  backend_.cholesky_solve(factor_, solved_);
  report.nis = backend_.dot(innovation, solved_);
  if (!std::isfinite(report.nis)) {
    report.status = UpdateStatus::skipped_nonfinite;
    return skip(observations, report);
  }
  nis_sum_ += static_cast<double>(report.nis);
  ++nis_count_;
  const GateOutcome gate = gate_.decide(static_cast<double>(report.nis), m);
  report.gate_threshold = gate.threshold;
  report.inflation = gate.inflation;
  if (gate.decision == GateDecision::reject) {
    report.status = UpdateStatus::rejected_by_gate;
    return skip(observations, report);
  }
  if (gate.decision == GateDecision::inflate) {
    // S' = c S = R + (c - 1) S + H P H^T: R inflated so that the NIS lands on the gate.
    const T c = static_cast<T>(gate.inflation);
    backend_.scale(c, s_);
    backend_.scale(std::sqrt(c), factor_);
  }

  // Phase 4: gains, means and covariances (all local), each step one batched call over blocks.
  FilterCounters delta;
  delta.updates = 1;
  delta.jitter_retries = report.jitter_retries;
  delta.inflated = gate.decision == GateDecision::inflate ? 1 : 0;
  ConstTensors<T> gains_in, innovations;
  Tensors<T> gains, means;
  for (std::size_t b = 0; b < observations.size(); ++b) {
    gains_in.push_back(&workspace_[b].gain);
    gains.push_back(&workspace_[b].gain);
    means.push_back(&observations[b].block->mean);
  }
  innovations.assign(observations.size(), &innovation);
  backend_.cholesky_solve_right_batched(factor_, all_u, gains);  // K_b = U_b S^-1
  backend_.gemm_batched(Op::none, Op::none, T(1), gains_in, innovations, T(1), means);
  downdate_dense_blocks(observations);
  for (std::size_t b = 0; b < observations.size(); ++b) {
    ParameterBlock<T>& block = *observations[b].block;
    if (block.kind != BlockKind::dense) {
      Workspace& w = workspace_[b];
      downdate_covariance(backend_, block, w.gain, w.u, s_, config_.safeguards.joseph, w.joseph);
    }
    block.counters += delta;
    counters_.eigen_clamps += clamp_if_due(backend_, block, config_.safeguards);
  }
  counters_ += delta;
  return report;
}

template <typename T>
UpdateReport<T> DecoupledEkf<T>::update(std::span<const BlockObservation<T>> observations,
                                        const Tensor<T>& innovation, ObservationNoise<T>& noise) {
  const Tensor<T>& r = noise.covariance(backend_, innovation.rows());
  const UpdateReport<T> report = update(observations, innovation, r);
  if (noise.adaptive() && report.applied() && report.inflation == 1.0) {
    const Index m = innovation.rows();
    backend_.diagonal(partial_, diagonal_);
    std::vector<T> e(static_cast<std::size_t>(m));
    std::vector<T> predicted(static_cast<std::size_t>(m));
    backend_.download(innovation, e.data());
    backend_.download(diagonal_, predicted.data());
    noise.adapt(e, predicted);
  }
  return report;
}

template class DecoupledEkf<float>;
template class DecoupledEkf<double>;

}  // namespace kwm
