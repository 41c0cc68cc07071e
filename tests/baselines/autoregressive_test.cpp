// Least-squares AR(p) / VAR(p): coefficient recovery within 3 standard errors on simulated data,
// equality with a direct normal-equations solve, missing values, exogenous inputs, order
// selection by validation.
#include "core/learners/baselines/autoregressive.hpp"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <limits>
#include <random>

#include "core/eval/one_step_evaluation.hpp"

namespace kwm {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// y_t = c + a1 y_{t-1} + a2 y_{t-2} + N(0, sigma^2), after a burn-in of 500 steps.
Eigen::MatrixXd simulate_ar2(Eigen::Index steps, double c, double a1, double a2, double sigma,
                             unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, sigma);
  const Eigen::Index burn = 500;
  Eigen::VectorXd y = Eigen::VectorXd::Zero(steps + burn);
  for (Eigen::Index t = 2; t < y.size(); ++t) {
    y(t) = c + a1 * y(t - 1) + a2 * y(t - 2) + noise(rng);
  }
  return y.tail(steps);
}

// The AR(2) design [1, y_{t-1}, y_{t-2}] and targets y_t for t = 2..T-1.
void ar2_design(const Eigen::MatrixXd& y, Eigen::MatrixXd& x, Eigen::VectorXd& target) {
  const Eigen::Index n = y.rows() - 2;
  x.resize(n, 3);
  target.resize(n);
  for (Eigen::Index r = 0; r < n; ++r) {
    x.row(r) << 1.0, y(r + 1, 0), y(r, 0);
    target(r) = y(r + 2, 0);
  }
}

AutoRegressiveConfig ar_config(Eigen::Index order, double ridge = 0.0) {
  AutoRegressiveConfig config;
  config.order = order;
  config.ridge = ridge;
  return config;
}

TEST(AutoRegressive, RecoversAr2WithinThreeStandardErrors) {
  const double c = 0.2, a1 = 0.5, a2 = -0.3, sigma = 1.0;
  const Eigen::Index steps = 20000;
  const Eigen::MatrixXd y = simulate_ar2(steps, c, a1, a2, sigma, 7);
  AutoRegressiveLearner learner(0, 1, ar_config(2));
  learner.fit(Eigen::MatrixXd(steps, 0), y, {0, steps});
  EXPECT_EQ(learner.name(), "ar");
  EXPECT_EQ(learner.training_rows(0), steps - 2);

  Eigen::MatrixXd x;
  Eigen::VectorXd target;
  ar2_design(y, x, target);
  const Eigen::VectorXd beta = learner.coefficients(0);
  // Standard errors sqrt(diag(s^2 (X^T X)^-1)) with the fitted residual variance s^2.
  const Eigen::MatrixXd gram_inverse =
      (x.transpose() * x).ldlt().solve(Eigen::MatrixXd::Identity(3, 3));
  const Eigen::VectorXd se = (learner.residual_variance()(0) * gram_inverse.diagonal()).cwiseSqrt();
  const Eigen::Vector3d truth(c, a1, a2);
  for (int j = 0; j < 3; ++j) {
    EXPECT_NEAR(beta(j), truth(j), 3 * se(j)) << "coefficient " << j << ", SE " << se(j);
  }
  // Residual variance: SE of a sample variance is sigma^2 sqrt(2 / n).
  EXPECT_NEAR(learner.residual_variance()(0), sigma * sigma,
              3 * sigma * sigma * std::sqrt(2.0 / static_cast<double>(steps)));
}

TEST(AutoRegressive, EqualsDirectNormalEquationsSolve) {
  const Eigen::Index steps = 3000;
  const Eigen::MatrixXd y = simulate_ar2(steps, 1.0, 0.6, 0.2, 0.5, 11);
  Eigen::MatrixXd x;
  Eigen::VectorXd target;
  ar2_design(y, x, target);
  const Eigen::VectorXd direct = (x.transpose() * x).ldlt().solve(x.transpose() * target);
  const Eigen::VectorXd qr = x.householderQr().solve(target);

  AutoRegressiveLearner exact(0, 1, ar_config(2, 0.0));
  exact.fit(Eigen::MatrixXd(steps, 0), y, {0, steps});
  // Same normal equations, different summation order: agreement to 1e-10 relative.
  EXPECT_LT((exact.coefficients(0) - direct).norm(), 1e-10 * direct.norm());
  EXPECT_LT((exact.coefficients(0) - qr).norm(), 1e-8 * qr.norm());
  const Eigen::VectorXd residual = target - x * direct;
  EXPECT_NEAR(exact.residual_variance()(0), residual.squaredNorm() / (x.rows() - 3),
              1e-10 * exact.residual_variance()(0));

  // The default tiny ridge (1e-10 of the mean Gram diagonal) moves nothing that matters.
  AutoRegressiveLearner ridged(0, 1, ar_config(2, 1e-10));
  ridged.fit(Eigen::MatrixXd(steps, 0), y, {0, steps});
  EXPECT_LT((ridged.coefficients(0) - direct).norm(), 1e-6 * direct.norm());
}

TEST(AutoRegressive, PredictsFromLagsAndFillsMissingWithItsOwnForecast) {
  const Eigen::Index steps = 2000;
  const Eigen::MatrixXd y = simulate_ar2(steps, 0.3, 0.5, -0.2, 1.0, 3);
  AutoRegressiveLearner learner(0, 1, ar_config(2));
  learner.fit(Eigen::MatrixXd(steps, 0), y, {0, steps});
  const Eigen::VectorXd b = learner.coefficients(0);
  const Eigen::VectorXd none;
  const double mean = y.col(0).mean();

  // After reset the lags are the training mean.
  Prediction p = learner.predict(none);
  EXPECT_NEAR(p.mean(0), b(0) + (b(1) + b(2)) * mean, 1e-12);
  EXPECT_DOUBLE_EQ(p.variance(0), learner.residual_variance()(0));
  learner.observe(Eigen::VectorXd::Constant(1, 1.0), false);
  p = learner.predict(none);
  EXPECT_NEAR(p.mean(0), b(0) + b(1) * 1.0 + b(2) * mean, 1e-12);
  learner.observe(Eigen::VectorXd::Constant(1, 2.0), false);
  p = learner.predict(none);
  const double forecast = b(0) + b(1) * 2.0 + b(2) * 1.0;
  EXPECT_NEAR(p.mean(0), forecast, 1e-12);
  learner.observe(Eigen::VectorXd::Constant(1, kNaN), false);  // missing: lag = forecast
  p = learner.predict(none);
  EXPECT_NEAR(p.mean(0), b(0) + b(1) * forecast + b(2) * 2.0, 1e-12);
}

TEST(AutoRegressive, TrainingRowsWithMissingValuesAreSkipped) {
  const Eigen::Index steps = 20000;
  Eigen::MatrixXd y = simulate_ar2(steps, 0.2, 0.5, -0.3, 1.0, 5);
  for (Eigen::Index t = 17; t < steps; t += 23) y(t, 0) = kNaN;
  Eigen::Index complete = 0;
  for (Eigen::Index t = 2; t < steps; ++t) {
    if (std::isfinite(y(t, 0)) && std::isfinite(y(t - 1, 0)) && std::isfinite(y(t - 2, 0))) {
      ++complete;
    }
  }
  AutoRegressiveLearner learner(0, 1, ar_config(2));
  learner.fit(Eigen::MatrixXd(steps, 0), y, {0, steps});
  EXPECT_EQ(learner.training_rows(0), complete);
  // Fewer rows (about 13% lost): SE about 0.0072 for a1, a2; tolerance 3 SE = 0.022.
  EXPECT_NEAR(learner.coefficients(0)(1), 0.5, 0.022);
  EXPECT_NEAR(learner.coefficients(0)(2), -0.3, 0.022);
}

TEST(AutoRegressive, Var1RecoversTheCouplingMatrix) {
  Eigen::Matrix2d a;
  a << 0.5, 0.2, -0.3, 0.4;
  const Eigen::Vector2d c(0.1, -0.2);
  const Eigen::Index steps = 20000;
  std::mt19937_64 rng(21);
  std::normal_distribution<double> noise(0.0, 1.0);
  Eigen::MatrixXd y(steps, 2);
  Eigen::Vector2d state = Eigen::Vector2d::Zero();
  for (Eigen::Index t = -500; t < steps; ++t) {
    const Eigen::Vector2d e(noise(rng), 0.5 * noise(rng));
    state = c + a * state + e;
    if (t >= 0) y.row(t) = state.transpose();
  }
  AutoRegressiveConfig config = ar_config(1);
  config.cross_channel = true;
  AutoRegressiveLearner learner(0, 2, config);
  learner.fit(Eigen::MatrixXd(steps, 0), y, {0, steps});
  EXPECT_EQ(learner.name(), "var");

  Eigen::MatrixXd x(steps - 1, 3);
  x.col(0).setOnes();
  x.rightCols(2) = y.topRows(steps - 1);
  const Eigen::VectorXd gram_inverse_diag =
      (x.transpose() * x).ldlt().solve(Eigen::MatrixXd::Identity(3, 3)).diagonal();
  for (Eigen::Index i = 0; i < 2; ++i) {
    const Eigen::VectorXd b = learner.coefficients(i);
    const Eigen::VectorXd se = (learner.residual_variance()(i) * gram_inverse_diag).cwiseSqrt();
    const Eigen::Vector3d truth(c(i), a(i, 0), a(i, 1));
    for (int j = 0; j < 3; ++j) {
      EXPECT_NEAR(b(j), truth(j), 3 * se(j)) << "equation " << i << " coefficient " << j;
    }
  }
  EXPECT_NEAR(learner.residual_variance()(0), 1.0, 3 * std::sqrt(2.0 / steps));
  EXPECT_NEAR(learner.residual_variance()(1), 0.25, 3 * 0.25 * std::sqrt(2.0 / steps));
}

TEST(AutoRegressive, ExogenousInputsEnterAsRegressors) {
  const Eigen::Index steps = 20000;
  std::mt19937_64 rng(99);
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::MatrixXd u(steps, 1), y(steps, 1);
  double prev = 0;
  for (Eigen::Index t = 0; t < steps; ++t) {
    u(t, 0) = 2.0 + normal(rng);
    y(t, 0) = 0.1 + 0.6 * prev + 1.5 * u(t, 0) + 0.3 * normal(rng);
    prev = y(t, 0);
  }
  AutoRegressiveConfig config = ar_config(1);
  config.use_inputs = true;
  AutoRegressiveLearner learner(1, 1, config);
  learner.fit(u, y, {0, steps});
  const Eigen::VectorXd b = learner.coefficients(0);
  ASSERT_EQ(b.size(), 3);  // [1, y_{t-1}, u_t]
  // SE of the u coefficient is about 0.3 / sqrt(n) = 2.1e-3 (u is nearly independent of the
  // lag); tolerance 0.01 (about 5 SE).
  EXPECT_NEAR(b(2), 1.5, 0.01);
  EXPECT_NEAR(b(1), 0.6, 0.01);
  // A missing input enters as its training mean.
  learner.reset_state();
  const double with_mean = learner.predict(Eigen::VectorXd::Constant(1, u.col(0).mean())).mean(0);
  learner.reset_state();
  EXPECT_NEAR(learner.predict(Eigen::VectorXd::Constant(1, kNaN)).mean(0), with_mean, 1e-12);
}

TEST(AutoRegressive, OrderSelectionByValidationRejectsTooSmallAnOrder) {
  const Eigen::Index steps = 5000;
  const Eigen::MatrixXd y = simulate_ar2(steps, 0.0, 0.5, -0.4, 1.0, 13);
  const eval::TimeSplit split = eval::split_by_time(steps, {0.7, 0.1, 0.2});
  const ArOrderSelection s =
      select_ar_order(ar_config(1, 1e-10), {1, 2, 3}, Eigen::MatrixXd(steps, 0), y, split);
  ASSERT_EQ(s.validation_mse.size(), 3u);
  EXPECT_NE(s.order, 1);
  EXPECT_GT(s.validation_mse[0], s.validation_mse[1]);
  // The true model's one-step MSE is the noise variance 1; 500 validation steps: SE 0.063.
  EXPECT_NEAR(s.validation_mse[1], 1.0, 3 * std::sqrt(2.0 / 500));
}

TEST(AutoRegressive, Errors) {
  EXPECT_THROW(AutoRegressiveLearner(0, 1, ar_config(0)), std::invalid_argument);
  AutoRegressiveLearner learner(0, 1, ar_config(3));
  EXPECT_THROW(learner.predict({}), std::logic_error);
  const Eigen::MatrixXd tiny = Eigen::MatrixXd::Ones(5, 1);
  EXPECT_THROW(learner.fit(Eigen::MatrixXd(5, 0), tiny, {0, 5}), std::invalid_argument);
  const Eigen::MatrixXd y = simulate_ar2(100, 0.0, 0.5, 0.0, 1.0, 1);
  learner.fit(Eigen::MatrixXd(100, 0), y, {0, 100});
  EXPECT_THROW(learner.observe(Eigen::VectorXd::Zero(1), false), std::logic_error);
}

}  // namespace
}  // namespace kwm
