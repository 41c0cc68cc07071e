// Persistence on a known sequence: last observed value, variance from its own squared errors.
#include "core/learners/baselines/persistence.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/eval/one_step_evaluation.hpp"

namespace kwm {
namespace {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

Eigen::VectorXd scalar(double v) { return Eigen::VectorXd::Constant(1, v); }

TEST(Persistence, KnownSequenceWithAGap) {
  PersistenceLearner learner(1, {.initial_variance = 2.0, .variance_floor = 1e-12});
  const Eigen::VectorXd none;
  // y = 1, 2, NaN, 5, 4. Errors scored when learning: 2-1, 5-2, 4-5.
  Prediction p = learner.predict(none);
  EXPECT_TRUE(std::isnan(p.mean(0)));
  EXPECT_DOUBLE_EQ(p.variance(0), 2.0);  // no error seen yet
  learner.observe(scalar(1), true);

  p = learner.predict(none);
  EXPECT_DOUBLE_EQ(p.mean(0), 1.0);
  EXPECT_DOUBLE_EQ(p.variance(0), 2.0);
  learner.observe(scalar(2), true);  // e = 1

  p = learner.predict(none);
  EXPECT_DOUBLE_EQ(p.mean(0), 2.0);
  EXPECT_DOUBLE_EQ(p.variance(0), 1.0);
  learner.observe(scalar(kMissing), true);  // missing: carry 2 forward

  p = learner.predict(none);
  EXPECT_DOUBLE_EQ(p.mean(0), 2.0);
  EXPECT_DOUBLE_EQ(p.variance(0), 1.0);
  learner.observe(scalar(5), true);  // e = 3

  p = learner.predict(none);
  EXPECT_DOUBLE_EQ(p.mean(0), 5.0);
  EXPECT_DOUBLE_EQ(p.variance(0), (1.0 + 9.0) / 2);
  learner.observe(scalar(4), true);  // e = -1

  p = learner.predict(none);
  EXPECT_DOUBLE_EQ(p.mean(0), 4.0);
  EXPECT_DOUBLE_EQ(p.variance(0), 11.0 / 3);

  // Evaluation: the state moves, the variance estimate does not.
  learner.observe(scalar(100), false);
  p = learner.predict(none);
  EXPECT_DOUBLE_EQ(p.mean(0), 100.0);
  EXPECT_DOUBLE_EQ(p.variance(0), 11.0 / 3);

  // reset_state forgets the last value, keeps the learned variance.
  learner.reset_state();
  p = learner.predict(none);
  EXPECT_TRUE(std::isnan(p.mean(0)));
  EXPECT_DOUBLE_EQ(p.variance(0), 11.0 / 3);
}

TEST(Persistence, ChannelsAreIndependentAndTheFloorHolds) {
  PersistenceLearner learner(2, {.initial_variance = 1.0, .variance_floor = 0.01});
  Eigen::Vector2d y(3.0, kMissing);
  learner.predict({});
  learner.observe(y, true);
  y << 3.0, 7.0;  // channel 0 constant: squared error 0, floored
  learner.predict({});
  learner.observe(y, true);
  const Prediction p = learner.predict({});
  EXPECT_DOUBLE_EQ(p.mean(0), 3.0);
  EXPECT_DOUBLE_EQ(p.mean(1), 7.0);
  EXPECT_DOUBLE_EQ(p.variance(0), 0.01);
  EXPECT_DOUBLE_EQ(p.variance(1), 1.0);  // channel 1 has no error yet
}

TEST(Persistence, ScoredOnARandomWalkItsVarianceMatchesTheStepVariance) {
  // y_t = y_{t-1} + N(0, 0.25): persistence is the optimal forecast, its MSE -> 0.25.
  const Eigen::Index n = 20000;
  Eigen::MatrixXd y(n, 1);
  unsigned state = 12345;
  double level = 0;
  for (Eigen::Index t = 0; t < n; ++t) {
    // Two uniform draws -> one normal (Box-Muller) with a tiny LCG: portable across libstdc++.
    state = state * 1664525u + 1013904223u;
    const double u1 = (state + 0.5) / 4294967296.0;
    state = state * 1664525u + 1013904223u;
    const double u2 = (state + 0.5) / 4294967296.0;
    level += 0.5 * std::sqrt(-2 * std::log(u1)) * std::cos(2 * 3.141592653589793 * u2);
    y(t, 0) = level;
  }
  PersistenceLearner learner(1);
  const eval::ForecastMetrics m =
      eval::evaluate_one_step(learner, Eigen::MatrixXd(n, 0), y, {0, n}, true);
  EXPECT_EQ(m.overall.unpredicted, 1);
  EXPECT_EQ(m.overall.count, n - 1);
  // SE of a mean of squared N(0, 0.25) values: 0.25 sqrt(2 / n) = 2.5e-3; tolerance 3 SE.
  EXPECT_NEAR(m.overall.mse, 0.25, 3 * 0.25 * std::sqrt(2.0 / n));
  EXPECT_NEAR(learner.predict({}).variance(0), 0.25, 3 * 0.25 * std::sqrt(2.0 / n));
}

TEST(Persistence, RejectsBadConfigAndSizes) {
  EXPECT_THROW(PersistenceLearner(0), std::invalid_argument);
  EXPECT_THROW(PersistenceLearner(1, {.initial_variance = 1.0, .variance_floor = 0.0}),
               std::invalid_argument);
  PersistenceLearner learner(2);
  EXPECT_THROW(learner.observe(scalar(1), true), std::invalid_argument);
}

}  // namespace
}  // namespace kwm
