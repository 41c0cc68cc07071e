// Persistence: last value carried forward, variance from its own one-step errors.
#include "core/learners/baselines/persistence.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace kwm {

PersistenceLearner::PersistenceLearner(Eigen::Index channels, const PersistenceConfig& config)
    : config_(config) {
  if (channels < 1) {
    throw std::invalid_argument("persistence needs at least one output channel; got " +
                                std::to_string(channels));
  }
  if (!(config.variance_floor > 0) || !(config.initial_variance > 0) ||
      !std::isfinite(config.initial_variance)) {
    throw std::invalid_argument(
        "persistence.initial_variance and persistence.variance_floor must be positive; got " +
        std::to_string(config.initial_variance) + " and " + std::to_string(config.variance_floor));
  }
  last_ = Eigen::VectorXd::Constant(channels, std::numeric_limits<double>::quiet_NaN());
  squared_errors_ = Eigen::VectorXd::Zero(channels);
  error_count_ = Eigen::VectorXd::Zero(channels);
}

Prediction PersistenceLearner::predict(const Eigen::VectorXd& /*u*/) {
  Prediction p;
  p.mean = last_;
  p.variance.resize(last_.size());
  for (Eigen::Index i = 0; i < last_.size(); ++i) {
    const double v =
        error_count_(i) > 0 ? squared_errors_(i) / error_count_(i) : config_.initial_variance;
    p.variance(i) = std::max(v, config_.variance_floor);
  }
  return p;
}

void PersistenceLearner::observe(const Eigen::VectorXd& y, bool learn) {
  if (y.size() != last_.size()) {
    throw std::invalid_argument("persistence: expected " + std::to_string(last_.size()) +
                                " observed channels; got " + std::to_string(y.size()));
  }
  for (Eigen::Index i = 0; i < y.size(); ++i) {
    if (std::isnan(y(i))) continue;  // missing: keep carrying the last observed value
    if (learn && !std::isnan(last_(i))) {
      const double e = y(i) - last_(i);
      squared_errors_(i) += e * e;
      error_count_(i) += 1;
    }
    last_(i) = y(i);
  }
}

void PersistenceLearner::reset_state() {
  last_.setConstant(std::numeric_limits<double>::quiet_NaN());
}

}  // namespace kwm
