// Shared helpers for the model suites: random sequences with missing values, running a model
// over a sequence, and central finite differences of yhat_t wrt every parameter.
#pragma once

#include <Eigen/Dense>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/models/sequence_model.hpp"

namespace kwm::test {

struct Sequence {
  std::vector<Eigen::VectorXd> u;  // inputs per step
  std::vector<Eigen::VectorXd> y;  // observations per step (NaN = missing)
};

// Smooth-ish random inputs and observations; `missing` lists (t, channel) pairs set to NaN
// (channel -1: the whole observation).
inline Sequence random_sequence(Index steps, Index n_in, Index n_out, std::uint64_t seed,
                                const std::vector<std::pair<Index, Index>>& missing = {}) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Sequence s;
  for (Index t = 0; t < steps; ++t) {
    Eigen::VectorXd u(n_in), y(n_out);
    for (Index i = 0; i < n_in; ++i)
      u(i) = std::sin(0.3 * static_cast<double>(t) + static_cast<double>(i)) + 0.3 * normal(rng);
    for (Index i = 0; i < n_out; ++i)
      y(i) =
          std::cos(0.2 * static_cast<double>(t) * static_cast<double>(i + 1)) + 0.3 * normal(rng);
    s.u.push_back(u);
    s.y.push_back(y);
  }
  for (const auto& [t, c] : missing) {
    auto& y = s.y[static_cast<std::size_t>(t)];
    if (c < 0) {
      y.setConstant(std::numeric_limits<double>::quiet_NaN());
    } else {
      y(c) = std::numeric_limits<double>::quiet_NaN();
    }
  }
  return s;
}

struct Trajectory {
  std::vector<Eigen::VectorXd> yhat;
  std::vector<Eigen::MatrixXd> jacobian;  // dense n_out x P per step (empty when not asked)
};

// reset(), then step/advance through the sequence with the model's current theta.
inline Trajectory run(SequenceModel& model, const Sequence& s, bool with_jacobian = true) {
  Trajectory out;
  model.reset();
  for (std::size_t t = 0; t < s.u.size(); ++t) {
    const LinearizedPrediction& p = model.step(s.u[t]);
    out.yhat.push_back(p.yhat);
    if (with_jacobian) out.jacobian.push_back(p.dense_jacobian());
    model.advance(s.y[t]);
  }
  return out;
}

// Central differences d yhat_t / d theta_j with step h_j = step * max(1, |theta_j|):
// truncation O(h^2), rounding O(eps / h), about 1e-9 relative for step 1e-6.
inline std::vector<Eigen::MatrixXd> finite_difference_jacobians(SequenceModel& model,
                                                                const Sequence& s,
                                                                double step = 1e-6) {
  const Eigen::VectorXd theta = model.theta();
  const Index n_params = theta.size();
  std::vector<Eigen::MatrixXd> fd(s.u.size(), Eigen::MatrixXd(model.output_size(), n_params));
  for (Index j = 0; j < n_params; ++j) {
    const double h = step * std::max(1.0, std::abs(theta(j)));
    Eigen::VectorXd plus = theta, minus = theta;
    plus(j) += h;
    minus(j) -= h;
    model.set_theta(plus);
    const Trajectory up = run(model, s, false);
    model.set_theta(minus);
    const Trajectory down = run(model, s, false);
    for (std::size_t t = 0; t < s.u.size(); ++t)
      fd[t].col(j) = (up.yhat[t] - down.yhat[t]) / (2 * h);
  }
  model.set_theta(theta);
  return fd;
}

// max over entries of |a - b| / (1 + |b|): a mixed absolute/relative error.
inline double mixed_error(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return ((a - b).array().abs() / (1.0 + b.array().abs())).maxCoeff();
}

}  // namespace kwm::test
