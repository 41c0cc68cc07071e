// The Kalman sequence learners: the dense-EKF learner equals a global EKF written out here with
// plain Eigen (same model, same sensitivities), missing outputs included; every blocking learns a
// simulated system; the config reader names bad keys.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/learners/kalman/kalman_sequence_learner.hpp"
#include "core/models/innovation_ssm.hpp"

namespace kwm {
namespace {

InnovationSsmConfig ssm_config() {
  InnovationSsmConfig c;
  c.n_in = 1;
  c.n_out = 2;
  c.states = 2;
  c.seed = 7;
  return c;
}

// Inputs and a 2-output response of a fixed stable system, with one missing value.
struct Series {
  Eigen::MatrixXd u, y;
};
Series simulate(int steps, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  Series s{Eigen::MatrixXd(steps, 1), Eigen::MatrixXd(steps, 2)};
  Eigen::Vector2d x(0, 0);
  Eigen::Matrix2d a;
  a << 0.8, 0.2, -0.3, 0.7;
  for (int t = 0; t < steps; ++t) {
    s.u(t, 0) = std::sin(0.3 * t) + 0.3 * normal(rng);
    s.y.row(t) = (Eigen::Vector2d(x(0) + 0.5 * s.u(t, 0), x(1) - x(0)) +
                  0.1 * Eigen::Vector2d(normal(rng), normal(rng)))
                     .transpose();
    x = a * x + Eigen::Vector2d(1.0, 0.5) * s.u(t, 0);
  }
  s.y(5, 1) = std::numeric_limits<double>::quiet_NaN();
  return s;
}

KalmanLearnerConfig dense_config() {
  KalmanLearnerConfig c;
  c.kind = KalmanLearnerKind::dense_ekf;
  c.initial_variance = 0.05;
  c.project_every = 0;  // the hand-written EKF below has no projection
  c.kalman.noise.variance = 0.2;
  return c;
}

TEST(KalmanSequenceLearner, DenseEkfEqualsHandWrittenGlobalEkf) {
  const Series s = simulate(40, 3);
  KalmanSequenceLearner learner(std::make_unique<InnovationSsm>(ssm_config()), dense_config());
  InnovationSsm reference(ssm_config());
  const Index p = reference.parameter_count();
  Eigen::VectorXd theta = reference.theta();
  Eigen::MatrixXd cov = 0.05 * Eigen::MatrixXd::Identity(p, p);
  const double r = 0.2;

  for (int t = 0; t < s.u.rows(); ++t) {
    const Eigen::VectorXd u = s.u.row(t).transpose(), y = s.y.row(t).transpose();
    const Prediction got = learner.predict(u);
    const LinearizedPrediction& lin = reference.step(u);
    const Eigen::MatrixXd h = lin.dense_jacobian();
    const Eigen::MatrixXd s_full = h * cov * h.transpose() + r * Eigen::MatrixXd::Identity(2, 2);
    // Tolerance: the two paths do the same fp64 algebra in different association orders over
    // p ~ 20 parameters and 40 steps; 1e-9 relative leaves ~1e6 ulp of headroom.
    EXPECT_LT((got.mean - lin.yhat).norm(), 1e-9 * (1 + lin.yhat.norm())) << "t=" << t;
    EXPECT_LT((got.variance - s_full.diagonal()).norm(), 1e-9 * s_full.norm()) << "t=" << t;

    // Global EKF on the observed rows only.
    std::vector<Index> rows;
    for (Index i = 0; i < 2; ++i)
      if (std::isfinite(y(i))) rows.push_back(i);
    const Index m = Index(rows.size());
    Eigen::MatrixXd ho(m, p);
    Eigen::VectorXd e(m);
    for (Index k = 0; k < m; ++k) {
      ho.row(k) = h.row(rows[std::size_t(k)]);
      e(k) = y(rows[std::size_t(k)]) - lin.yhat(rows[std::size_t(k)]);
    }
    const Eigen::MatrixXd so = ho * cov * ho.transpose() + r * Eigen::MatrixXd::Identity(m, m);
    const Eigen::MatrixXd gain = so.llt().solve(ho * cov).transpose();
    theta += gain * e;
    cov -= gain * ho * cov;
    cov = 0.5 * (cov + cov.transpose()).eval();
    reference.set_theta(theta);
    reference.advance(y);
    learner.observe(y, true);
    EXPECT_LT((learner.model().theta() - theta).norm(), 1e-9 * theta.norm()) << "t=" << t;
  }
}

TEST(KalmanSequenceLearner, MissingObservationKeepsParametersAndAdvancesState) {
  const Series s = simulate(10, 4);
  KalmanSequenceLearner learner(std::make_unique<InnovationSsm>(ssm_config()), dense_config());
  for (int t = 0; t < 5; ++t) {
    learner.predict(s.u.row(t).transpose());
    learner.observe(s.y.row(t).transpose(), true);
  }
  const Eigen::VectorXd before = learner.model().theta();
  learner.predict(s.u.row(5).transpose());
  learner.observe(Eigen::Vector2d::Constant(std::nan("")), true);
  EXPECT_EQ(learner.model().theta(), before);
  EXPECT_NO_THROW(learner.predict(s.u.row(6).transpose()));
}

class EveryBlocking : public ::testing::TestWithParam<std::pair<KalmanLearnerKind, Blocking>> {};

TEST_P(EveryBlocking, LearnsASimulatedSystemInOnePass) {
  const Series s = simulate(1200, 5);
  KalmanLearnerConfig c;
  c.kind = GetParam().first;
  c.blocking = GetParam().second;
  c.initial_variance = 0.1;
  c.kalman.noise.mode = NoiseMode::adaptive;
  c.kalman.noise.variance = 0.5;
  // Mean squared one-step error over the last 200 steps, learning or with theta frozen.
  auto late_mse = [&](bool learn) {
    KalmanSequenceLearner learner(std::make_unique<InnovationSsm>(ssm_config()), c);
    double sum = 0;
    int count = 0;
    for (int t = 0; t < s.u.rows(); ++t) {
      const Eigen::VectorXd y = s.y.row(t).transpose();
      const Prediction pred = learner.predict(s.u.row(t).transpose());
      if (t >= 1000 && y.allFinite()) sum += (pred.mean - y).squaredNorm(), ++count;
      learner.observe(y, learn);
    }
    return sum / count;
  };
  const double frozen = late_mse(false), learned = late_mse(true);
  // The noise floor is 2 x 0.01 = 0.02; the untrained model is off by order 1.
  EXPECT_LT(learned, 0.1 * frozen);
  EXPECT_LT(learned, 0.06);
  KalmanSequenceLearner learner(std::make_unique<InnovationSsm>(ssm_config()), c);
  learner.predict(s.u.row(0).transpose());
  learner.observe(s.y.row(0).transpose(), true);
  EXPECT_TRUE(std::isfinite(learner.mean_nis()));
  EXPECT_NE(learner.jacobian_source().find("reverse-free"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Learners, EveryBlocking,
    ::testing::Values(std::pair{KalmanLearnerKind::dense_ekf, Blocking::per_group},
                      std::pair{KalmanLearnerKind::diagonal_ekf, Blocking::per_group},
                      std::pair{KalmanLearnerKind::sensitivity_dekf, Blocking::per_group},
                      std::pair{KalmanLearnerKind::sensitivity_dekf, Blocking::per_unit}));

TEST(KalmanLearnerConfig, ReadsYamlAndNamesBadKeys) {
  const auto c = kalman_learner_config(
      YAML::Load("{type: sensitivity-dekf, blocking: per_unit, initial_variance: 0.5,"
                 " noise: {mode: adaptive, variance: 0.1}, gating: {mode: reject}}"));
  EXPECT_EQ(c.blocking, Blocking::per_unit);
  EXPECT_EQ(c.kalman.noise.mode, NoiseMode::adaptive);
  EXPECT_EQ(c.kalman.update.gating.mode, GateMode::reject);
  const auto round_trip = kalman_learner_config(to_yaml(c));
  EXPECT_EQ(YAML::Dump(to_yaml(round_trip)), YAML::Dump(to_yaml(c)));

  auto message = [](const std::string& yaml) {
    try {
      kalman_learner_config(YAML::Load(yaml));
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("{type: dense-ekf, foo: 1}").find("learner.foo"), std::string::npos);
  EXPECT_NE(message("{type: magic}").find("learner.type"), std::string::npos);
  EXPECT_NE(message("{initial_variance: -1}").find("learner.initial_variance"), std::string::npos);
  EXPECT_NE(message("{noise: {ema: abc}}").find("learner.noise.ema"), std::string::npos);
}

}  // namespace
}  // namespace kwm
