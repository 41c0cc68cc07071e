// The data-parallel AR / VAR fit under mpirun at 1-4 ranks: each rank accumulates the normal
// equations over its share of the training rows and one all-reduce per equation joins them. The
// coefficients and residual variances equal the one-process fit to 1e-12 relative (the shares'
// sums are added in another order than one process's running sum), bitwise at one rank, and every
// rank holds bitwise the same fit.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "core/learners/baselines/autoregressive.hpp"
#include "tests/distributed/mpi_test_main.hpp"

namespace kwm {
namespace {

using testing::comm;

constexpr double kTolerance = 1e-12;

struct Table {
  Eigen::MatrixXd inputs, outputs;
};

// A stable VAR(2) in 3 channels driven by 2 inputs, with a few missing values.
Table simulate(Eigen::Index steps) {
  std::mt19937 rng(11);
  std::normal_distribution<double> normal;
  Table t{Eigen::MatrixXd(steps, 2), Eigen::MatrixXd::Zero(steps, 3)};
  for (Eigen::Index s = 0; s < steps; ++s) {
    t.inputs(s, 0) = normal(rng);
    t.inputs(s, 1) = std::sin(0.1 * double(s));
    if (s < 2) continue;
    for (Eigen::Index i = 0; i < 3; ++i)
      t.outputs(s, i) = 0.5 * t.outputs(s - 1, i) - 0.2 * t.outputs(s - 2, (i + 1) % 3) +
                        0.3 * t.inputs(s, i % 2) + 0.1 * normal(rng) + 1.0;
  }
  t.outputs(40, 1) = t.outputs(77, 0) = std::numeric_limits<double>::quiet_NaN();
  t.inputs(90, 0) = std::numeric_limits<double>::quiet_NaN();
  return t;
}

void expect_same_fit(const AutoRegressiveConfig& config) {
  const Table t = simulate(240);
  const eval::TimeRange train{10, 200};
  AutoRegressiveLearner one(2, 3, config), shared(2, 3, config);
  one.fit(t.inputs, t.outputs, train);
  shared.fit(t.inputs, t.outputs, train,
             RowShare{comm->rank(), comm->size(),
                      [](double* data, std::size_t count) { comm->all_reduce_sum(data, count); }});
  for (Eigen::Index i = 0; i < 3; ++i) {
    const Eigen::VectorXd& a = one.coefficients(i);
    const Eigen::VectorXd& b = shared.coefficients(i);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(one.training_rows(i), shared.training_rows(i));
    if (comm->size() == 1) {
      EXPECT_EQ(a, b) << "one rank: bitwise the ordinary fit";
      EXPECT_EQ(one.residual_variance()(i), shared.residual_variance()(i));
    }
    EXPECT_LE((a - b).norm(), kTolerance * a.norm()) << "channel " << i;
    EXPECT_NEAR(one.residual_variance()(i), shared.residual_variance()(i),
                kTolerance * one.residual_variance()(i));
    // Every rank: bitwise the same coefficients as rank 0.
    Eigen::VectorXd first = b;
    comm->broadcast(first.data(), static_cast<std::size_t>(first.size()), 0);
    EXPECT_EQ(first, b) << "rank " << comm->rank();
  }
  // The shared fit predicts like the ordinary one.
  const Prediction p = one.predict(t.inputs.row(200).transpose());
  const Prediction q = shared.predict(t.inputs.row(200).transpose());
  EXPECT_LE((p.mean - q.mean).norm(), kTolerance * p.mean.norm());
}

TEST(AutoRegressiveDataParallel, ArPerChannelEqualsOneProcess) {
  AutoRegressiveConfig config;
  config.order = 3;
  config.use_inputs = true;
  expect_same_fit(config);
}

TEST(AutoRegressiveDataParallel, VarEqualsOneProcess) {
  AutoRegressiveConfig config;
  config.order = 2;
  config.cross_channel = true;
  config.ridge = 1e-6;
  expect_same_fit(config);
}

TEST(AutoRegressiveDataParallel, TooFewRowsThrowsOnEveryRank) {
  // 12 training rows for a VAR(4) with 13 coefficients: every rank sees the summed count.
  const Table t = simulate(240);
  AutoRegressiveConfig config;
  config.order = 4;
  config.cross_channel = true;
  AutoRegressiveLearner shared(2, 3, config);
  EXPECT_THROW(shared.fit(t.inputs, t.outputs, eval::TimeRange{10, 26},
                          RowShare{comm->rank(), comm->size(),
                                   [](double* data, std::size_t count) {
                                     comm->all_reduce_sum(data, count);
                                   }}),
               std::invalid_argument);
}

TEST(AutoRegressiveDataParallel, RejectsAShareWithoutSum) {
  AutoRegressiveLearner learner(0, 1, AutoRegressiveConfig{});
  const Table t = simulate(240);
  EXPECT_THROW(learner.fit(Eigen::MatrixXd(), t.outputs.col(0), eval::TimeRange{0, 50},
                           RowShare{0, 2, nullptr}),
               std::invalid_argument);
}

}  // namespace
}  // namespace kwm

int main(int argc, char** argv) { return kwm::testing::run_mpi_tests(argc, argv); }
