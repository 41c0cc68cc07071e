// KalmanSequenceLearner: blocks from the model's parameter groups, one DEKF update per step.
#include "core/learners/kalman/kalman_sequence_learner.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "core/backend/host_transfer.hpp"
#include "core/kalman/predict.hpp"
#include "core/models/diagonal_stack.hpp"

namespace kwm {

KalmanSequenceLearner::KalmanSequenceLearner(std::unique_ptr<SequenceModel> model,
                                             const KalmanLearnerConfig& config,
                                             AllReduceSum<double> reduce)
    : config_((config.validate(), config)),
      model_(std::move(model)),
      backend_(make_backend<double>(config.backend)),
      reduce_(reduce),
      ekf_(*backend_, config.kalman.update, std::move(reduce)),
      noise_(config.kalman.noise) {
  if (!model_) throw std::invalid_argument("KalmanSequenceLearner needs a model");
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
    case KalmanLearnerKind::diagonal_ekf:
      slices_.push_back({0, p});
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
  const Eigen::VectorXd& theta = model_->theta();
  for (std::size_t b = 0; b < slices_.size(); ++b) {
    const Slice& s = slices_[b];
    const Tensor<double> mean = to_backend(*backend_, theta.segment(s.offset, s.size));
    const auto id = static_cast<BlockId>(b);
    if (config_.kind == KalmanLearnerKind::diagonal_ekf) {
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
    jacobians_[b] = to_backend(*backend_, jacobian_slice(prediction, slices_[b]));
    const Index n = slices_[b].size;
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
  all_reduce_sum(reduce_, hph);
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
      write_back_means();
    }
  }
  model_->advance(y);
}

void KalmanSequenceLearner::write_back_means() {
  Eigen::VectorXd theta = model_->theta();
  for (std::size_t b = 0; b < blocks_.size(); ++b)
    theta.segment(slices_[b].offset, slices_[b].size) = to_host(*backend_, blocks_[b].mean);
  model_->set_theta(theta);
  if (config_.project_every > 0 && updates_ % config_.project_every == 0) {
    if (model_->project_to_stable().changed) {
      ++projections_;
      const Eigen::VectorXd& projected = model_->theta();
      for (std::size_t b = 0; b < blocks_.size(); ++b) {
        const Eigen::VectorXd segment = projected.segment(slices_[b].offset, slices_[b].size);
        backend_->upload(segment.data(), blocks_[b].mean);
      }
    }
  }
}

double KalmanSequenceLearner::mean_nis() const {
  if (ekf_.nis_count() == 0) return std::numeric_limits<double>::quiet_NaN();
  return ekf_.nis_sum() / double(ekf_.nis_count());
}

}  // namespace kwm
