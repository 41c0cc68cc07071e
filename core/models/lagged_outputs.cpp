// Autoregressive lag buffer.
#include "core/models/lagged_outputs.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace kwm {

LaggedOutputs::LaggedOutputs(Index channels, Index lags)
    : history_(Eigen::MatrixXd::Zero(channels, lags)) {}

void LaggedOutputs::reset() { history_.setZero(); }

void LaggedOutputs::push(const Eigen::VectorXd& y) {
  if (history_.cols() == 0) return;
  for (Index k = history_.cols() - 1; k > 0; --k) history_.col(k) = history_.col(k - 1);
  for (Index c = 0; c < history_.rows(); ++c) history_(c, 0) = std::isnan(y(c)) ? 0.0 : y(c);
}

void LaggedOutputs::set_history(const Eigen::MatrixXd& history) {
  if (history.rows() != history_.rows() || history.cols() != history_.cols())
    throw std::invalid_argument("lagged outputs: expected " + std::to_string(history_.rows()) +
                                " x " + std::to_string(history_.cols()) + " history; got " +
                                std::to_string(history.rows()) + " x " +
                                std::to_string(history.cols()));
  history_ = history;
}

void LaggedOutputs::write(Eigen::Ref<Eigen::VectorXd> dst) const {
  dst = Eigen::Map<const Eigen::VectorXd>(history_.data(), history_.size());
}

}  // namespace kwm
