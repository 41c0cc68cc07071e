// Adam on forward sensitivities: gradient of 0.5 e^T R^-1 e is -H^T R^-1 e.
#include "core/learners/baselines/adam_sensitivity.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace kwm {

namespace {

void require(bool ok, const char* key, const char* rule, double value) {
  if (!ok) {
    throw std::invalid_argument(std::string("config key adam.") + key + " must be " + rule +
                                "; got " + std::to_string(value));
  }
}

}  // namespace

void AdamSensitivityConfig::validate() const {
  require(learning_rate > 0 && std::isfinite(learning_rate), "learning_rate", "> 0", learning_rate);
  require(beta1 >= 0 && beta1 < 1, "beta1", "in [0, 1)", beta1);
  require(beta2 >= 0 && beta2 < 1, "beta2", "in [0, 1)", beta2);
  require(epsilon > 0, "epsilon", "> 0", epsilon);
  require(weight_decay >= 0 && std::isfinite(weight_decay), "weight_decay", ">= 0", weight_decay);
  require(gradient_clip >= 0, "gradient_clip", ">= 0 (0 = off)", gradient_clip);
  require(noise_ema > 0 && noise_ema <= 1, "noise_ema", "in (0, 1]", noise_ema);
  require(initial_noise > 0 && std::isfinite(initial_noise), "initial_noise", "> 0", initial_noise);
  require(noise_floor > 0, "noise_floor", "> 0", noise_floor);
  require(stability_margin > 0 && stability_margin < 1, "stability_margin", "in (0, 1)",
          stability_margin);
}

AdamSensitivityLearner::AdamSensitivityLearner(std::unique_ptr<SequenceModel> model,
                                               const AdamSensitivityConfig& config)
    : model_(std::move(model)), config_(config) {
  if (!model_) throw std::invalid_argument("adam-sensitivity needs a model");
  config_.validate();
  const Index p = model_->parameter_count();
  first_moment_ = Eigen::VectorXd::Zero(p);
  second_moment_ = Eigen::VectorXd::Zero(p);
  noise_ = Eigen::VectorXd::Constant(model_->output_size(),
                                     std::max(config_.initial_noise, config_.noise_floor));
  model_->request_jacobians(std::vector<bool>(model_->groups().size(), true));
}

Prediction AdamSensitivityLearner::predict(const Eigen::VectorXd& u) {
  const LinearizedPrediction& lp = model_->step(u);
  yhat_ = lp.yhat;
  jacobian_ = lp.dense_jacobian();
  pending_ = true;
  const Eigen::VectorXd& scale = model_->normalization().output.scale;
  Prediction p;
  p.mean = model_->prediction_in_data_units(lp);
  p.variance = noise_.cwiseProduct(scale.cwiseAbs2());
  return p;
}

void AdamSensitivityLearner::observe(const Eigen::VectorXd& y, bool learn) {
  if (!pending_) throw std::logic_error("adam-sensitivity: observe() without a predict()");
  if (y.size() != model_->output_size()) {
    throw std::invalid_argument("adam-sensitivity: expected " +
                                std::to_string(model_->output_size()) + " observed channels; got " +
                                std::to_string(y.size()));
  }
  pending_ = false;
  const Eigen::VectorXd z = model_->normalized_observation(y);
  // Weighted innovation R^-1 e on the observed rows; missing rows contribute nothing.
  Eigen::VectorXd weighted = Eigen::VectorXd::Zero(z.size());
  bool any_observed = false;
  for (Index i = 0; i < z.size(); ++i) {
    if (std::isnan(z(i))) continue;
    weighted(i) = (z(i) - yhat_(i)) / noise_(i);
    any_observed = true;
  }
  if (learn && any_observed) {
    Eigen::VectorXd gradient = -jacobian_.transpose() * weighted;
    if (config_.gradient_clip > 0) {
      const double norm = gradient.norm();
      if (norm > config_.gradient_clip) gradient *= config_.gradient_clip / norm;
    }
    ++steps_;
    const double b1 = config_.beta1, b2 = config_.beta2;
    first_moment_ = b1 * first_moment_ + (1 - b1) * gradient;
    second_moment_ = b2 * second_moment_ + (1 - b2) * gradient.cwiseAbs2();
    const double t = static_cast<double>(steps_);
    const double correction1 = 1 - std::pow(b1, t);
    const double correction2 = 1 - std::pow(b2, t);
    Eigen::VectorXd theta = model_->theta();
    if (config_.weight_decay > 0) theta *= 1 - config_.learning_rate * config_.weight_decay;
    theta.array() -= config_.learning_rate * (first_moment_.array() / correction1) /
                     ((second_moment_.array() / correction2).sqrt() + config_.epsilon);
    model_->set_theta(theta);
    model_->project_to_stable(config_.stability_margin);
    // r from the innovation of this step (before the parameter change took effect).
    const double a = config_.noise_ema;
    for (Index i = 0; i < z.size(); ++i) {
      if (std::isnan(z(i))) continue;
      const double e = z(i) - yhat_(i);
      noise_(i) = std::max((1 - a) * noise_(i) + a * e * e, config_.noise_floor);
    }
  }
  model_->advance(y);
}

void AdamSensitivityLearner::reset_state() {
  model_->reset();
  pending_ = false;
}

}  // namespace kwm
