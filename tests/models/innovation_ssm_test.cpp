// Innovation-form SSM: forward sensitivities against finite differences, missing observations,
// the stability projection, the exact linearity of [C D] without K, and a reverse-mode
// reference computed in the test only.
#include <gtest/gtest.h>

#include <random>

#include "core/models/innovation_ssm.hpp"
#include "core/models/stability.hpp"
#include "tests/models/model_test_support.hpp"

namespace kwm {
namespace {

// A random theta with every entry O(0.3), A and A - K C stable (radius <= 0.95).
void randomise(InnovationSsm& model, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.3);
  Eigen::VectorXd theta(model.parameter_count());
  for (Index i = 0; i < theta.size(); ++i) theta(i) = normal(rng);
  model.set_theta(theta);
  model.project_to_stable(0.05);
}

InnovationSsmConfig full_config() {
  InnovationSsmConfig c;
  c.n_in = 2;
  c.n_out = 2;
  c.output_lags = 1;
  c.states = 3;
  return c;
}

TEST(InnovationSsm, SensitivitiesMatchFiniteDifferences) {
  InnovationSsm model(full_config());
  randomise(model, 7);
  // One channel missing at t = 6, the whole observation at t = 11: e = 0 there.
  const test::Sequence s = test::random_sequence(20, 2, 2, 3, {{6, 1}, {11, -1}});
  const test::Trajectory exact = test::run(model, s);
  const auto fd = test::finite_difference_jacobians(model, s);
  for (std::size_t t = 0; t < s.u.size(); ++t) {
    // Central differences with h = 1e-6 are good to ~1e-9 here; 1e-6 leaves room.
    EXPECT_LT(test::mixed_error(exact.jacobian[t], fd[t]), 1e-6) << "t = " << t;
  }
  // The sensitivities must actually carry the recurrence: late steps depend on A and K.
  EXPECT_GT(exact.jacobian.back().middleCols(model.groups()[0].offset, 9).norm(), 1e-3);
}

TEST(InnovationSsm, OutputErrorModelWithoutInputsMatchesFiniteDifferences) {
  InnovationSsmConfig c;
  c.n_in = 0;  // u empty: driven only by its own lagged outputs
  c.n_out = 2;
  c.output_lags = 2;
  c.states = 2;
  c.feedthrough = false;
  c.innovation_gain = false;
  InnovationSsm model(c);
  randomise(model, 11);
  const test::Sequence s = test::random_sequence(20, 0, 2, 5, {{4, 0}});
  const test::Trajectory exact = test::run(model, s);
  const auto fd = test::finite_difference_jacobians(model, s);
  for (std::size_t t = 0; t < s.u.size(); ++t) {
    EXPECT_LT(test::mixed_error(exact.jacobian[t], fd[t]), 1e-6) << "t = " << t;  // as above
  }
}

TEST(InnovationSsm, ReadoutIsSharedRowExactlyWithoutGain) {
  InnovationSsmConfig c = full_config();
  c.innovation_gain = false;
  InnovationSsm model(c);
  randomise(model, 5);
  const Index readout = find_group(model.groups(), "readout");
  ASSERT_TRUE(model.groups()[static_cast<std::size_t>(readout)].linear_in_parameters);
  const test::Sequence s = test::random_sequence(5, 2, 2, 1);
  model.reset();
  for (std::size_t t = 0; t < s.u.size(); ++t) {
    const Eigen::VectorXd x = model.state();
    const LinearizedPrediction& p = model.step(s.u[t]);
    const Eigen::VectorXd a = shared_row_activation(p, model.groups(), readout);
    EXPECT_LT((a.head(3) - x).norm(), 1e-15);
    // Row i of the readout block is a^T in unit i and zero elsewhere.
    const Eigen::MatrixXd& h = p.jacobian[static_cast<std::size_t>(readout)];
    const Index unit = model.groups()[static_cast<std::size_t>(readout)].unit_size();
    EXPECT_EQ(h.row(1).segment(unit, unit).transpose(), a);
    EXPECT_EQ(h.row(1).head(unit).norm(), 0.0);
    model.advance(s.y[t]);
  }
  InnovationSsm with_gain(full_config());
  EXPECT_FALSE(
      with_gain.groups()[static_cast<std::size_t>(find_group(with_gain.groups(), "readout"))]
          .linear_in_parameters);
}

TEST(InnovationSsm, MissingObservationCarriesNoInnovation) {
  InnovationSsm model(full_config());
  randomise(model, 3);
  Eigen::VectorXd theta = model.theta();
  const test::Sequence s = test::random_sequence(3, 2, 2, 2, {{2, -1}});
  model.reset();
  for (int t = 0; t < 2; ++t) {
    model.step(s.u[static_cast<std::size_t>(t)]);
    model.advance(s.y[static_cast<std::size_t>(t)]);
  }
  const Eigen::VectorXd x = model.state();
  model.step(s.u[2]);
  model.advance(s.y[2]);
  // x_{t+1} = A x_t + B v_t with v_t = [u_t; y_{t-1}] (identity normalisation).
  Eigen::VectorXd v(4);
  v << s.u[2], s.y[1];
  EXPECT_LT((model.state() - (model.A() * x + model.B() * v)).norm(), 1e-14);
}

TEST(InnovationSsm, ProjectionRestoresStability) {
  InnovationSsm model(full_config());
  Eigen::VectorXd theta = model.theta();
  std::mt19937_64 rng(9);
  std::normal_distribution<double> normal(0.0, 2.0);
  for (Index i = 0; i < theta.size(); ++i) theta(i) = normal(rng);
  model.set_theta(theta);
  ASSERT_GT(spectral_radius(model.A()), 1.0);
  const double margin = 1e-3;
  const StabilityReport report = model.project_to_stable(margin);
  EXPECT_TRUE(report.changed);
  // Radii are computed by an eigensolver: allow 1e-12 over the bound, still well below 1.
  const double bound = 1.0 - margin;
  EXPECT_LE(spectral_radius(model.A()), bound + 1e-12);
  EXPECT_LE(spectral_radius(model.A() - model.K() * model.C()), bound + 1e-12);
  EXPECT_LT(report.spectral_radius, 1.0);
  // C and D are untouched; a stable model is left alone.
  const Eigen::VectorXd after = model.theta();
  EXPECT_FALSE(model.project_to_stable(margin).changed);
  EXPECT_EQ(model.theta(), after);
}

TEST(InnovationSsm, StepIsRepeatableAndMisuseIsReported) {
  InnovationSsm model(full_config());
  randomise(model, 2);
  const Eigen::VectorXd u = Eigen::VectorXd::Ones(2);
  model.reset();
  const Eigen::VectorXd first = model.step(u).yhat;
  EXPECT_EQ(model.step(u).yhat, first);
  EXPECT_THROW(model.step(Eigen::VectorXd::Ones(3)), std::invalid_argument);
  EXPECT_THROW(model.advance(Eigen::VectorXd::Ones(1)), std::invalid_argument);
  model.advance(Eigen::VectorXd::Zero(2));
  EXPECT_THROW(model.advance(Eigen::VectorXd::Zero(2)), std::logic_error);
  EXPECT_THROW(model.set_theta(Eigen::VectorXd::Zero(3)), std::invalid_argument);
  EXPECT_THROW(model.project_to_stable(1.5), std::invalid_argument);
  InnovationSsmConfig bad = full_config();
  bad.states = 0;
  EXPECT_THROW(InnovationSsm{bad}, std::invalid_argument);
}

// Reverse-mode reference, in this test only: the gradient of L = w^T yhat_T by an adjoint pass
// through x_{t+1} = (A - K M_t C) x_t + B v_t + K M_t (y_t - D v_t) equals w^T H_T.
TEST(InnovationSsm, SensitivitiesMatchAReverseModeReference) {
  InnovationSsmConfig c = full_config();
  InnovationSsm model(c);
  randomise(model, 13);
  const test::Sequence s = test::random_sequence(20, 2, 2, 6, {{8, 0}, {14, -1}});
  const Index steps = 20, n_x = c.states, n_v = 4;

  std::vector<Eigen::VectorXd> x, v, e, mask;
  Eigen::MatrixXd h_last;
  model.reset();
  Eigen::VectorXd previous_y = Eigen::VectorXd::Zero(2);
  for (Index t = 0; t < steps; ++t) {
    const auto& u = s.u[static_cast<std::size_t>(t)];
    const auto& y = s.y[static_cast<std::size_t>(t)];
    x.push_back(model.state());
    Eigen::VectorXd vt(n_v);
    vt << u, previous_y;
    v.push_back(vt);
    const LinearizedPrediction& p = model.step(u);
    h_last = p.dense_jacobian();
    Eigen::VectorXd m(2), et(2);
    for (Index j = 0; j < 2; ++j) {
      m(j) = std::isnan(y(j)) ? 0.0 : 1.0;
      et(j) = std::isnan(y(j)) ? 0.0 : y(j) - p.yhat(j);
      previous_y(j) = std::isnan(y(j)) ? 0.0 : y(j);
    }
    mask.push_back(m);
    e.push_back(et);
    model.advance(y);
  }

  const Eigen::Vector2d w(0.7, -1.3);
  Eigen::VectorXd gradient = Eigen::VectorXd::Zero(model.parameter_count());
  const auto& groups = model.groups();
  auto grad_of = [&](const char* name, Index rows, Index cols) {
    const ParameterGroup& g = groups[static_cast<std::size_t>(find_group(groups, name))];
    return Eigen::Map<RowMajorMatrix>(gradient.data() + g.offset, rows, cols);
  };
  auto grad_a = grad_of("A", n_x, n_x);
  auto grad_b = grad_of("B", n_x, n_v);
  auto grad_k = grad_of("K", n_x, 2);
  auto grad_readout = grad_of("readout", 2, n_x + n_v);
  const Index last = steps - 1;
  grad_readout.leftCols(n_x) += w * x[static_cast<std::size_t>(last)].transpose();
  grad_readout.rightCols(n_v) += w * v[static_cast<std::size_t>(last)].transpose();
  Eigen::VectorXd adjoint = model.C().transpose() * w;  // dL/dx_T
  for (Index t = last - 1; t >= 0; --t) {
    const auto ts = static_cast<std::size_t>(t);
    const Eigen::MatrixXd km = model.K() * mask[ts].asDiagonal();
    grad_a += adjoint * x[ts].transpose();
    grad_b += adjoint * v[ts].transpose();
    grad_k += adjoint * e[ts].transpose();
    grad_readout.leftCols(n_x) -= km.transpose() * adjoint * x[ts].transpose();
    grad_readout.rightCols(n_v) -= km.transpose() * adjoint * v[ts].transpose();
    adjoint = (model.A() - km * model.C()).transpose() * adjoint;
  }
  // Two orders of summation of the same products: agreement to rounding, 1e-10 relative.
  const Eigen::VectorXd forward = h_last.transpose() * w;
  EXPECT_LT((forward - gradient).norm(), 1e-10 * (1.0 + gradient.norm()));
}

}  // namespace
}  // namespace kwm
