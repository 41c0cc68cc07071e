// KalmanSequenceLearner: blocks from the model's parameter groups, one DEKF update per step,
// optionally sharded over ranks (owners keep covariances; means are all-gathered).
#include "core/learners/kalman/kalman_sequence_learner.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/backend/host_transfer.hpp"
#include "core/kalman/predict.hpp"
#include "core/models/diagonal_stack.hpp"

namespace kwm {

KalmanSequenceLearner::KalmanSequenceLearner(std::unique_ptr<SequenceModel> model,
                                             const KalmanLearnerConfig& config,
                                             LearnerSharding sharding)
    : config_((config.validate(), config)),
      model_(std::move(model)),
      backend_(make_backend<double>(config.backend)),
      sharding_(std::move(sharding)),
      ekf_(*backend_, config.kalman.update, sharding_.reduce),
      noise_(config.kalman.noise) {
  if (!model_) throw std::invalid_argument("KalmanSequenceLearner needs a model");
  if (sharding_.ranks < 1 || sharding_.rank < 0 || sharding_.rank >= sharding_.ranks)
    throw std::invalid_argument("KalmanSequenceLearner: rank " + std::to_string(sharding_.rank) +
                                " of " + std::to_string(sharding_.ranks) + " is not a valid rank");
  if (!sharding_.single_process() && (!sharding_.reduce || !sharding_.gather))
    throw std::invalid_argument(
        "KalmanSequenceLearner: a sharded learner needs reduce and gather collectives");
  build_blocks();
}

std::string KalmanSequenceLearner::jacobian_source() const {
  std::string source = "forward sensitivities (RTRL), reverse-free";
  if (const auto* stack = dynamic_cast<const DiagonalStack*>(model_.get());
      stack && stack->config().sensitivity == SensitivityMode::layer_local)
    source += "; layer-local approximation (upper layers' recurrent paths dropped)";
  return source;
}

void KalmanSequenceLearner::build_blocks() {
  const Index p = model_->parameter_count();
  const auto& groups = model_->groups();
  switch (config_.kind) {
    case KalmanLearnerKind::dense_ekf:
      slices_.push_back({0, p});
      break;
    case KalmanLearnerKind::diagonal_ekf:
      // One diagonal block per group: the same fully decoupled filter as one diagonal block over
      // theta (every parameter is its own 1 x 1 block either way), but shardable.
      for (const auto& g : groups) slices_.push_back({g.offset, g.size});
      break;
    case KalmanLearnerKind::sensitivity_dekf:
      for (const auto& g : groups) {
        if (config_.blocking == Blocking::per_group) {
          slices_.push_back({g.offset, g.size});
        } else {
          for (Index u = 0; u < g.units; ++u)
            slices_.push_back({g.offset + u * g.unit_size(), g.unit_size()});
        }
      }
      break;
  }
  const bool diagonal = config_.kind == KalmanLearnerKind::diagonal_ekf;
  for (std::size_t b = 0; b < slices_.size(); ++b) {
    const double n = double(slices_[b].size);
    shapes_.push_back({static_cast<std::int64_t>(b), slices_[b].size, diagonal ? n : n * n});
  }
  owners_.assign(slices_.size(), 0);
  if (sharding_.place) owners_ = sharding_.place(shapes_);
  if (owners_.size() != slices_.size())
    throw std::invalid_argument("KalmanSequenceLearner: placement returned " +
                                std::to_string(owners_.size()) + " owners for " +
                                std::to_string(slices_.size()) + " blocks");
  for (std::size_t b = 0; b < owners_.size(); ++b) {
    if (owners_[b] < 0 || owners_[b] >= sharding_.ranks)
      throw std::invalid_argument("KalmanSequenceLearner: placement gave block " +
                                  std::to_string(b) + " to rank " + std::to_string(owners_[b]) +
                                  " of " + std::to_string(sharding_.ranks));
    if (owners_[b] == sharding_.rank) local_.push_back(b);
  }

  // Covariance (and a backend copy of the mean) only for the blocks this rank owns.
  const Eigen::VectorXd& theta = model_->theta();
  for (const std::size_t b : local_) {
    const Slice& s = slices_[b];
    const Tensor<double> mean = to_backend(*backend_, theta.segment(s.offset, s.size));
    const auto id = static_cast<BlockId>(b);
    if (diagonal) {
      const Tensor<double> variances =
          to_backend(*backend_, Eigen::VectorXd::Constant(s.size, config_.initial_variance));
      blocks_.push_back(make_diagonal_block(*backend_, id, mean, variances));
    } else {
      const Eigen::MatrixXd p0 =
          config_.initial_variance * Eigen::MatrixXd::Identity(s.size, s.size);
      blocks_.push_back(make_dense_block(*backend_, id, mean, to_backend(*backend_, p0)));
    }
  }
}

Eigen::MatrixXd KalmanSequenceLearner::jacobian_slice(const LinearizedPrediction& prediction,
                                                      const Slice& slice) const {
  const auto& groups = model_->groups();
  Eigen::MatrixXd h(model_->output_size(), slice.size);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const Index begin = std::max(groups[g].offset, slice.offset);
    const Index end = std::min(groups[g].offset + groups[g].size, slice.offset + slice.size);
    if (begin >= end) continue;
    h.middleCols(begin - slice.offset, end - begin) =
        prediction.jacobian[g].middleCols(begin - groups[g].offset, end - begin);
  }
  return h;
}

Prediction KalmanSequenceLearner::predict(const Eigen::VectorXd& u) {
  const LinearizedPrediction& prediction = model_->step(u);
  const Index m = model_->output_size();
  yhat_ = prediction.yhat;

  // Predictive covariance in normalised units: sum_b H_b P_b H_b^T (+ over ranks) + R.
  jacobians_.resize(blocks_.size());
  Tensor<double> hph = backend_->allocate(m, m);
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    const Slice& slice = slices_[local_[b]];
    jacobians_[b] = to_backend(*backend_, jacobian_slice(prediction, slice));
    const Index n = slice.size;
    Tensor<double> u_b = backend_->allocate(n, m);
    if (blocks_[b].kind == BlockKind::diagonal) {
      Tensor<double> identity = to_backend(*backend_, Eigen::MatrixXd::Identity(m, m));
      backend_->gemm(Op::transpose, Op::none, 1.0, jacobians_[b], identity, 0.0, u_b);
      backend_->scale_rows(blocks_[b].covariance, u_b);
    } else {
      backend_->gemm(Op::none, Op::transpose, 1.0, blocks_[b].covariance, jacobians_[b], 0.0, u_b);
    }
    backend_->gemm(Op::none, Op::none, 1.0, jacobians_[b], u_b, 1.0, hph);
  }
  all_reduce_sum(sharding_.reduce, hph);
  const Eigen::MatrixXd s =
      to_host(*backend_, hph) + to_host(*backend_, noise_.covariance(*backend_, m));
  predicted_ = true;

  const Eigen::VectorXd scale = model_->normalization().output.scale;
  return Prediction{model_->prediction_in_data_units(prediction),
                    s.diagonal().cwiseProduct(scale.cwiseAbs2())};
}

void KalmanSequenceLearner::observe(const Eigen::VectorXd& y, bool learn) {
  if (!predicted_) throw std::logic_error("KalmanSequenceLearner::observe before predict");
  predicted_ = false;
  const Index m = model_->output_size();
  const Eigen::VectorXd target = model_->normalized_observation(y);
  const bool any_observed = target.array().isFinite().any();

  if (learn && any_observed) {
    for (auto& block : blocks_)
      kwm::predict(*backend_, block, config_.kalman.predict, config_.kalman.update.jitter);
    // A missing output gets a zero Jacobian row and a zero innovation: with R diagonal this is
    // exactly the update on the observed rows alone (its row of S decouples, its gain is zero).
    Eigen::VectorXd e = target - yhat_;
    std::vector<BlockObservation<double>> observations(blocks_.size());
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      if (!target.array().isFinite().all()) {
        Eigen::MatrixXd h = to_host(*backend_, jacobians_[b]);
        for (Index i = 0; i < m; ++i)
          if (!std::isfinite(target(i))) h.row(i).setZero();
        jacobians_[b] = to_backend(*backend_, h);
      }
      observations[b] = {&blocks_[b], jacobians_[b]};
    }
    for (Index i = 0; i < m; ++i)
      if (!std::isfinite(target(i))) e(i) = 0.0;

    const Tensor<double> r = noise_.covariance(*backend_, m);
    const UpdateReport<double> report = ekf_.update(observations, to_backend(*backend_, e), r);
    // Sharded: the owners' means travel after every attempted update, applied or not, so the
    // collective sequence never depends on a decision. (Decisions agree anyway: they are taken on
    // the all-reduced S, which is bitwise the same on every rank.)
    Eigen::VectorXd theta = model_->theta();
    if (!sharding_.single_process()) gather_means(theta);
    if (report.applied()) {
      ++updates_;
      if (noise_.adaptive() && report.inflation == 1.0) {
        // Missing rows are given e_i^2 = a_i + (H P H^T)_ii, the value at which the EMA keeps
        // a_i where it is: only observed outputs teach R.
        const Eigen::MatrixXd hph = to_host(*backend_, ekf_.predicted_output_covariance());
        std::vector<double> innovation(static_cast<std::size_t>(m)), predicted(innovation.size());
        for (Index i = 0; i < m; ++i) {
          const auto k = static_cast<std::size_t>(i);
          predicted[k] = hph(i, i);
          innovation[k] = std::isfinite(target(i))
                              ? e(i)
                              : std::sqrt(std::max(0.0, noise_.estimate()[k] + hph(i, i)));
        }
        noise_.adapt(innovation, predicted);
      }
      write_back_means(theta);
    }
  }
  model_->advance(y);
}

void KalmanSequenceLearner::gather_means(Eigen::VectorXd& theta) const {
  std::vector<std::size_t> counts(static_cast<std::size_t>(sharding_.ranks), 0);
  for (std::size_t b = 0; b < slices_.size(); ++b)
    counts[static_cast<std::size_t>(owners_[b])] += static_cast<std::size_t>(slices_[b].size);
  Eigen::VectorXd mine(static_cast<Index>(counts[static_cast<std::size_t>(sharding_.rank)]));
  Index at = 0;
  for (std::size_t i = 0; i < blocks_.size(); ++i) {
    const Index n = slices_[local_[i]].size;
    mine.segment(at, n) = to_host(*backend_, blocks_[i].mean);
    at += n;
  }
  Eigen::VectorXd all(theta.size());
  sharding_.gather(mine.data(), counts, all.data());
  // Rank r's blocks arrive in ascending global id, after every lower rank's.
  std::vector<Index> cursor(counts.size(), 0);
  for (std::size_t r = 1; r < counts.size(); ++r)
    cursor[r] = cursor[r - 1] + static_cast<Index>(counts[r - 1]);
  for (std::size_t b = 0; b < slices_.size(); ++b) {
    Index& from = cursor[static_cast<std::size_t>(owners_[b])];
    theta.segment(slices_[b].offset, slices_[b].size) = all.segment(from, slices_[b].size);
    from += slices_[b].size;
  }
}

void KalmanSequenceLearner::write_back_means(Eigen::VectorXd& theta) {
  if (sharding_.single_process())
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      theta.segment(slices_[local_[i]].offset, slices_[local_[i]].size) =
          to_host(*backend_, blocks_[i].mean);
  model_->set_theta(theta);
  if (config_.project_every > 0 && updates_ % config_.project_every == 0) {
    if (model_->project_to_stable().changed) {
      ++projections_;
      const Eigen::VectorXd& projected = model_->theta();
      for (std::size_t i = 0; i < blocks_.size(); ++i) {
        const Slice& slice = slices_[local_[i]];
        const Eigen::VectorXd segment = projected.segment(slice.offset, slice.size);
        backend_->upload(segment.data(), blocks_[i].mean);
      }
    }
  }
}

KalmanLearnerState KalmanSequenceLearner::shared_state() const {
  return KalmanLearnerState{ekf_.counters(),   ekf_.nis_sum(), ekf_.nis_count(),
                            noise_.estimate(), updates_,       projections_};
}

std::optional<Eigen::MatrixXd> KalmanSequenceLearner::last_gain(std::size_t i) const {
  const Tensor<double>* gain = ekf_.last_gain(i);
  if (!gain) return std::nullopt;
  return to_host(*backend_, *gain);
}

void KalmanSequenceLearner::restore(const Eigen::VectorXd& theta, const RecurrentState& recurrent,
                                    const KalmanLearnerState& state) {
  model_->set_theta(theta);
  model_->set_recurrent_state(recurrent);
  ekf_.restore_totals(state.counters, state.nis_sum, state.nis_count);
  noise_.restore_estimate(state.noise_estimate);
  updates_ = state.updates;
  projections_ = state.projections;
  predicted_ = false;
}

void KalmanSequenceLearner::restore_block(BlockId id, const Eigen::VectorXd& mean,
                                          const Eigen::MatrixXd& second_moment,
                                          const FilterCounters& counters) {
  const auto it = std::find(local_.begin(), local_.end(), static_cast<std::size_t>(id));
  if (it == local_.end())
    throw std::invalid_argument("restore_block: block " + std::to_string(id) +
                                " is not owned by rank " + std::to_string(sharding_.rank));
  ParameterBlock<double>& block = blocks_[static_cast<std::size_t>(it - local_.begin())];
  const Tensor<double>& p = block.second_moment();
  if (mean.size() != block.mean.size() || second_moment.rows() != p.rows() ||
      second_moment.cols() != p.cols())
    throw std::invalid_argument("restore_block: block " + std::to_string(id) + " has shape " +
                                std::to_string(p.rows()) + " x " + std::to_string(p.cols()) +
                                "; got " + std::to_string(second_moment.rows()) + " x " +
                                std::to_string(second_moment.cols()));
  backend_->upload(mean.data(), block.mean);
  backend_->upload(second_moment.data(), block.second_moment());
  block.counters = counters;
}

double KalmanSequenceLearner::mean_nis() const {
  if (ekf_.nis_count() == 0) return std::numeric_limits<double>::quiet_NaN();
  return ekf_.nis_sum() / double(ekf_.nis_count());
}

}  // namespace kwm
