// Adam on forward sensitivities: the first step follows the finite-difference gradient of
// 0.5 e^2 / r, and online training lowers the one-step MSE on a simulated linear system.
#include "core/learners/baselines/adam_sensitivity.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "core/eval/forecast_metrics.hpp"
#include "core/models/innovation_ssm.hpp"

namespace kwm {
namespace {

// y_t = x_t + 0.1 n_t, x_{t+1} = 0.9 x_t + 0.5 u_t with u ~ N(0, 1): a first-order linear system.
void simulate_linear_system(Eigen::Index steps, Eigen::MatrixXd& u, Eigen::MatrixXd& y) {
  std::mt19937_64 rng(4242);
  std::normal_distribution<double> normal(0.0, 1.0);
  u.resize(steps, 1);
  y.resize(steps, 1);
  double x = 0;
  for (Eigen::Index t = 0; t < steps; ++t) {
    u(t, 0) = normal(rng);
    y(t, 0) = x + 0.1 * normal(rng);
    x = 0.9 * x + 0.5 * u(t, 0);
  }
}

std::unique_ptr<SequenceModel> small_ssm() {
  InnovationSsmConfig config;
  config.n_in = 1;
  config.n_out = 1;
  config.states = 2;
  config.seed = 3;
  return std::make_unique<InnovationSsm>(config);
}

// yhat_T after replaying steps 0..T-1 with a fixed theta (learn = false throughout).
double replay_prediction(const Eigen::VectorXd& theta, const Eigen::MatrixXd& u,
                         const Eigen::MatrixXd& y, Eigen::Index last) {
  std::unique_ptr<SequenceModel> model = small_ssm();
  model->set_theta(theta);
  for (Eigen::Index t = 0; t < last; ++t) {
    model->step(u.row(t).transpose());
    model->advance(y.row(t).transpose());
  }
  return model->step(u.row(last).transpose()).yhat(0);
}

TEST(AdamSensitivity, FirstStepFollowsTheFiniteDifferenceGradient) {
  Eigen::MatrixXd u, y;
  simulate_linear_system(12, u, y);
  const Eigen::Index last = 10;
  AdamSensitivityConfig config;
  config.learning_rate = 1e-3;
  config.epsilon = 1e6;  // step = -lr g / (|g| + eps), linear in g to 1e-6 relative
  config.initial_noise = 0.5;
  AdamSensitivityLearner learner(small_ssm(), config);
  EXPECT_EQ(learner.name(), "adam-sensitivity");
  for (Eigen::Index t = 0; t < last; ++t) {
    learner.predict(u.row(t).transpose());
    learner.observe(y.row(t).transpose(), false);
  }
  const Eigen::VectorXd theta0 = learner.model().theta();
  learner.predict(u.row(last).transpose());
  learner.observe(y.row(last).transpose(), true);
  ASSERT_EQ(learner.steps(), 1);
  const Eigen::VectorXd step = learner.model().theta() - theta0;

  // Central differences of the loss 0.5 (y - yhat(theta))^2 / r, r = 0.5; h = 1e-6.
  const double h = 1e-6;
  Eigen::VectorXd gradient(theta0.size());
  for (Eigen::Index k = 0; k < theta0.size(); ++k) {
    Eigen::VectorXd plus = theta0, minus = theta0;
    plus(k) += h;
    minus(k) -= h;
    const double lp = 0.5 * std::pow(y(last, 0) - replay_prediction(plus, u, y, last), 2) / 0.5;
    const double lm = 0.5 * std::pow(y(last, 0) - replay_prediction(minus, u, y, last), 2) / 0.5;
    gradient(k) = (lp - lm) / (2 * h);
  }
  ASSERT_GT(gradient.norm(), 1e-3);
  const Eigen::VectorXd expected =
      -config.learning_rate * gradient.array() / (gradient.array().abs() + config.epsilon);
  // Tolerance: finite-difference error (~1e-8 of |g|) scaled by lr / eps.
  EXPECT_LT((step - expected).lpNorm<Eigen::Infinity>(),
            1e-6 * config.learning_rate * gradient.lpNorm<Eigen::Infinity>() / config.epsilon);
}

TEST(AdamSensitivity, OnlineTrainingLowersTheOneStepMse) {
  const Eigen::Index steps = 20000;
  Eigen::MatrixXd u, y;
  simulate_linear_system(steps, u, y);
  AdamSensitivityConfig config;
  config.learning_rate = 5e-3;
  AdamSensitivityLearner learner(small_ssm(), config);
  eval::ForecastMetricsAccumulator first(1), last(1);
  const Eigen::Index tenth = steps / 10;
  for (Eigen::Index t = 0; t < steps; ++t) {
    const Prediction p = learner.predict(u.row(t).transpose());
    if (t < tenth) first.add(p, y.row(t).transpose());
    if (t >= steps - tenth) last.add(p, y.row(t).transpose());
    learner.observe(y.row(t).transpose(), true);
  }
  const double mse_first = first.result().overall.mse;
  const double mse_last = last.result().overall.mse;
  RecordProperty("mse_first_tenth", std::to_string(mse_first));
  RecordProperty("mse_last_tenth", std::to_string(mse_last));
  // The signal variance is 0.25 / (1 - 0.81) = 1.3; the noise floor 0.01. Require the last 10%
  // to be at least 4 times better than the first 10% and within 5x of the noise floor.
  EXPECT_LT(mse_last, 0.25 * mse_first) << "first " << mse_first << ", last " << mse_last;
  EXPECT_LT(mse_last, 0.05) << "first " << mse_first << ", last " << mse_last;
  // The predictive variance tracks the innovations: coverage of the last 10% near 0.9.
  EXPECT_NEAR(last.result().overall.coverage90, 0.9, 0.05);
}

TEST(AdamSensitivity, EvaluationLeavesThetaAloneAndConfigIsChecked) {
  AdamSensitivityLearner learner(small_ssm());
  const Eigen::VectorXd theta0 = learner.model().theta();
  learner.predict(Eigen::VectorXd::Ones(1));
  learner.observe(Eigen::VectorXd::Ones(1), false);
  EXPECT_EQ(learner.model().theta(), theta0);
  EXPECT_THROW(learner.observe(Eigen::VectorXd::Ones(1), true), std::logic_error);
  AdamSensitivityConfig bad;
  bad.beta2 = 1.0;
  EXPECT_THROW(AdamSensitivityLearner(small_ssm(), bad), std::invalid_argument);
}

}  // namespace
}  // namespace kwm
