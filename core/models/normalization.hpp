// Per-channel normalisation z = (x - mean) / scale, fitted on the training split and stored with
// the model, which applies it to inputs and observations and inverts it for predictions.
#pragma once

#include <Eigen/Dense>

#include "core/models/parameter_group.hpp"

namespace kwm {

struct ChannelScaling {
  Eigen::VectorXd mean;   // per channel
  Eigen::VectorXd scale;  // per channel standard deviation, > 0

  // mean 0, scale 1: the identity map.
  static ChannelScaling identity(Index channels);
  // samples: rows are time steps, columns channels; NaN entries (missing) are skipped. The scale
  // is the population standard deviation (divide by the count); a channel with fewer than two
  // finite values or a standard deviation below 1e-12 * (1 + |mean|) gets scale 1 so constant
  // channels pass through centred, not blown up.
  static ChannelScaling fit(const Eigen::MatrixXd& samples);

  Index size() const { return mean.size(); }
  // (x - mean) / scale; NaN stays NaN.
  Eigen::VectorXd apply(const Eigen::VectorXd& x) const;
  // z * scale + mean.
  Eigen::VectorXd invert(const Eigen::VectorXd& z) const;
  // Throws std::invalid_argument when sizes differ or a scale is not finite and positive.
  void validate(Index channels, const char* what) const;
};

struct Normalization {
  ChannelScaling input;   // exogenous inputs u (n_in channels)
  ChannelScaling output;  // observations y (n_out channels); also scales lagged outputs

  static Normalization identity(Index n_in, Index n_out);
  // inputs: T x n_in (may have 0 columns), outputs: T x n_out, both from the training split.
  static Normalization fit(const Eigen::MatrixXd& inputs, const Eigen::MatrixXd& outputs);
};

}  // namespace kwm
