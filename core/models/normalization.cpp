// Per-channel normalisation statistics (NaN-aware) and their application.
#include "core/models/normalization.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace kwm {

ChannelScaling ChannelScaling::identity(Index channels) {
  return {Eigen::VectorXd::Zero(channels), Eigen::VectorXd::Ones(channels)};
}

ChannelScaling ChannelScaling::fit(const Eigen::MatrixXd& samples) {
  ChannelScaling s = identity(samples.cols());
  for (Index c = 0; c < samples.cols(); ++c) {
    double sum = 0.0;
    Index count = 0;
    for (Index t = 0; t < samples.rows(); ++t) {
      if (std::isfinite(samples(t, c))) {
        sum += samples(t, c);
        ++count;
      }
    }
    if (count == 0) continue;
    const double mean = sum / static_cast<double>(count);
    // Two passes: the centred sum of squares avoids the cancellation of E[x^2] - E[x]^2.
    double squares = 0.0;
    for (Index t = 0; t < samples.rows(); ++t) {
      if (std::isfinite(samples(t, c))) squares += (samples(t, c) - mean) * (samples(t, c) - mean);
    }
    const double std_dev = std::sqrt(squares / static_cast<double>(count));
    s.mean(c) = mean;
    s.scale(c) = (count >= 2 && std_dev > 1e-12 * (1.0 + std::abs(mean))) ? std_dev : 1.0;
  }
  return s;
}

Eigen::VectorXd ChannelScaling::apply(const Eigen::VectorXd& x) const {
  return (x - mean).cwiseQuotient(scale);
}

Eigen::VectorXd ChannelScaling::invert(const Eigen::VectorXd& z) const {
  return z.cwiseProduct(scale) + mean;
}

void ChannelScaling::validate(Index channels, const char* what) const {
  if (mean.size() != channels || scale.size() != channels) {
    throw std::invalid_argument(std::string("normalisation for ") + what + " needs " +
                                std::to_string(channels) + " channels; got mean " +
                                std::to_string(mean.size()) + ", scale " +
                                std::to_string(scale.size()));
  }
  for (Index c = 0; c < channels; ++c) {
    if (!std::isfinite(mean(c)) || !std::isfinite(scale(c)) || !(scale(c) > 0.0)) {
      throw std::invalid_argument(std::string("normalisation for ") + what + " channel " +
                                  std::to_string(c) + " needs a finite mean and a scale > 0");
    }
  }
}

Normalization Normalization::identity(Index n_in, Index n_out) {
  return {ChannelScaling::identity(n_in), ChannelScaling::identity(n_out)};
}

Normalization Normalization::fit(const Eigen::MatrixXd& inputs, const Eigen::MatrixXd& outputs) {
  if (inputs.cols() > 0 && inputs.rows() != outputs.rows()) {
    throw std::invalid_argument("normalisation fit: inputs have " + std::to_string(inputs.rows()) +
                                " rows, outputs " + std::to_string(outputs.rows()));
  }
  return {ChannelScaling::fit(inputs), ChannelScaling::fit(outputs)};
}

}  // namespace kwm
