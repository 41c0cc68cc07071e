// Innovation-form SSM: one-step prediction, the sensitivity recursion of Ljung's recursive
// prediction-error method, and the projection of A and A - K C back to stability.
#include "core/models/innovation_ssm.hpp"

#include <cmath>
#include <random>
#include <stdexcept>

#include "core/models/stability.hpp"

namespace kwm {
namespace {

// The rows x cols row-major matrix stored at theta[offset, offset + rows * cols).
Eigen::Map<RowMajorMatrix> block_of(Eigen::VectorXd& theta, Index offset, Index rows, Index cols) {
  return Eigen::Map<RowMajorMatrix>(theta.data() + offset, rows, cols);
}

const InnovationSsmConfig& validated(const InnovationSsmConfig& config) {
  config.validate();
  return config;
}

}  // namespace

void InnovationSsmConfig::validate() const {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw std::invalid_argument("innovation_ssm: " + message);
  };
  require(n_in >= 0, "n_in must be >= 0; got " + std::to_string(n_in));
  require(n_out >= 1, "n_out must be >= 1; got " + std::to_string(n_out));
  require(output_lags >= 0, "output_lags must be >= 0; got " + std::to_string(output_lags));
  require(states >= 1, "states must be >= 1; got " + std::to_string(states));
  require(initial_radius >= 0.0 && initial_radius < 1.0,
          "initial_radius must be in [0, 1); got " + std::to_string(initial_radius));
}

InnovationSsm::InnovationSsm(const InnovationSsmConfig& config)
    : SequenceModel(validated(config).n_in, config.n_out, config.output_lags),
      config_(config),
      n_x_(config.states),
      n_v_(model_input_size()),
      n_y_(config.n_out) {
  ParameterLayout layout;
  offset_a_ = layout.add("A", GroupKind::recurrence, n_x_, n_x_);
  offset_b_ = layout.add("B", GroupKind::input, n_x_, n_v_);
  offset_k_ = layout.add("K", GroupKind::innovation_gain, n_x_, config.innovation_gain ? n_y_ : 0);
  // [C D] is exactly linear only without K: with K, x_t depends on C and D through e.
  offset_readout_ = layout.add("readout", GroupKind::linear_readout, n_y_,
                               n_x_ + (config.feedthrough ? n_v_ : 0), !config.innovation_gain);

  std::mt19937_64 rng(config.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  auto random = [&](Index rows, Index cols, double sd) {
    Eigen::MatrixXd m(rows, cols);
    for (Index i = 0; i < m.size(); ++i) m(i) = sd * normal(rng);
    return m;
  };
  Eigen::VectorXd theta = Eigen::VectorXd::Zero(layout.size());
  Eigen::MatrixXd a = random(n_x_, n_x_, 1.0);
  const double radius = spectral_radius(a);
  a *= radius > 0.0 ? config.initial_radius / radius : 0.0;
  block_of(theta, offset_a_, n_x_, n_x_) = a;
  block_of(theta, offset_b_, n_x_, n_v_) =
      random(n_x_, n_v_, 1.0 / std::sqrt(std::max<Index>(1, n_v_)));
  block_of(theta, offset_readout_, n_y_, n_x_) = random(n_y_, n_x_, 1.0 / std::sqrt(n_x_));
  // K = 0 and D = 0: the prior mean is an output-error model without direct feedthrough.
  set_layout(layout, theta);
  reset_state();
}

void InnovationSsm::on_theta_changed() {
  a_ = block_of(theta_, offset_a_, n_x_, n_x_);
  b_ = block_of(theta_, offset_b_, n_x_, n_v_);
  k_ = config_.innovation_gain ? Eigen::MatrixXd(block_of(theta_, offset_k_, n_x_, n_y_))
                               : Eigen::MatrixXd::Zero(n_x_, n_y_);
  const Index readout_cols = n_x_ + (config_.feedthrough ? n_v_ : 0);
  const Eigen::MatrixXd readout = block_of(theta_, offset_readout_, n_y_, readout_cols);
  c_ = readout.leftCols(n_x_);
  d_ = config_.feedthrough ? Eigen::MatrixXd(readout.rightCols(n_v_))
                           : Eigen::MatrixXd::Zero(n_y_, n_v_);
}

void InnovationSsm::reset_state() {
  x_ = Eigen::VectorXd::Zero(n_x_);
  dx_ = Eigen::MatrixXd::Zero(n_x_, parameter_count());
}

void InnovationSsm::export_state(RecurrentState& state) const {
  state.emplace_back("x", x_);
  state.emplace_back("dx", dx_);
}

void InnovationSsm::import_state(const RecurrentState& state) {
  x_ = state_array(state, "x", n_x_, 1);
  dx_ = state_array(state, "dx", n_x_, parameter_count());
}

void InnovationSsm::predict(const Eigen::VectorXd& input, LinearizedPrediction& prediction) {
  v_ = input;
  yhat_ = c_ * x_ + d_ * v_;
  // d yhat / d theta = C dx/dtheta (through the state) + the explicit row i of [C D]: [x; v]^T.
  dyhat_.noalias() = c_ * dx_;
  const Index readout_cols = n_x_ + (config_.feedthrough ? n_v_ : 0);
  for (Index i = 0; i < n_y_; ++i) {
    const Index unit = offset_readout_ + i * readout_cols;
    dyhat_.row(i).segment(unit, n_x_) += x_.transpose();
    if (config_.feedthrough) dyhat_.row(i).segment(unit + n_x_, n_v_) += v_.transpose();
  }
  prediction.yhat = yhat_;
  store_jacobian_columns(0, dyhat_, prediction);
}

void InnovationSsm::commit(const Eigen::VectorXd& y) {
  // Missing entries carry no innovation: e_j = 0, and so de_j/dtheta = 0.
  Eigen::VectorXd e = Eigen::VectorXd::Zero(n_y_);
  Eigen::MatrixXd k_observed = k_;
  for (Index j = 0; j < n_y_; ++j) {
    if (std::isnan(y(j))) {
      k_observed.col(j).setZero();
    } else {
      e(j) = y(j) - yhat_(j);
    }
  }
  // dx_{t+1} = A dx_t + K de_t + explicit terms, with de_t = -d yhat_t (observed rows).
  Eigen::MatrixXd dx_next = a_ * dx_;
  dx_next.noalias() -= k_observed * dyhat_;
  for (Index i = 0; i < n_x_; ++i) {
    dx_next.row(i).segment(offset_a_ + i * n_x_, n_x_) += x_.transpose();
    if (n_v_ > 0) dx_next.row(i).segment(offset_b_ + i * n_v_, n_v_) += v_.transpose();
    if (config_.innovation_gain)
      dx_next.row(i).segment(offset_k_ + i * n_y_, n_y_) += e.transpose();
  }
  x_ = a_ * x_ + b_ * v_ + k_ * e;
  dx_.swap(dx_next);
}

StabilityReport InnovationSsm::project(double margin) {
  // A is scaled to radius 1 - margin when beyond it; then K alone is shrunk (by the largest
  // bisection factor s) until A - s K C is stable too. C keeps its value, so the predictor's
  // output map is untouched and only the feedback is weakened.
  const double bound = 1.0 - margin;
  // Scale to just inside the bound so that a second projection, whose eigensolver may round the
  // radius up by a few ulps, finds nothing to do.
  const double target = bound * (1.0 - 1e-9);
  StabilityReport report;
  Eigen::MatrixXd a = a_;
  const double radius_a = spectral_radius(a);
  if (radius_a > bound) {
    a *= target / radius_a;
    block_of(theta_, offset_a_, n_x_, n_x_) = a;
    report.changed = true;
  }
  report.spectral_radius = spectral_radius(a);
  if (config_.innovation_gain) {
    const Eigen::MatrixXd kc = k_ * c_;
    double s = 1.0;
    if (spectral_radius(a - kc) > bound) {
      s = stable_gain_scale(a, kc, target);
      block_of(theta_, offset_k_, n_x_, n_y_) = s * k_;
      report.changed = true;
    }
    report.spectral_radius = std::max(report.spectral_radius, spectral_radius(a - s * kc));
  }
  if (report.changed) on_theta_changed();
  return report;
}

}  // namespace kwm
