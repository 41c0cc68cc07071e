// The Eigen information-form shared-row update against core/kalman's covariance-form per-sample
// RLS (lambda = 1: exact), the Sherman-Morrison mean-field solve against a dense solve, skips that
// leave the block untouched, and the deterministic LPT placement.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <limits>
#include <random>

#include "core/backend/backend.hpp"
#include "core/backend/host_transfer.hpp"
#include "core/kalman/parameter_block.hpp"
#include "core/kalman/shared_row_rls.hpp"
#include "core/lm/learners/block_placement.hpp"
#include "core/lm/learners/mean_field_softmax.hpp"
#include "core/lm/learners/shared_row_information.hpp"

namespace kwm::lm {
namespace {

Eigen::MatrixXd random_matrix(std::mt19937_64& rng, Eigen::Index rows, Eigen::Index cols) {
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::MatrixXd m(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = normal(rng);
  return m;
}

double relative_error(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).norm() / b.norm();
}

TEST(SharedRowInformation, BatchedInformationFormEqualsPerSampleCovarianceForm) {
  std::mt19937_64 rng(11);
  const Eigen::Index d_out = 4;
  const Eigen::Index d_in = 5;
  const int samples = 40;
  const double r = 0.3;
  const Eigen::MatrixXd w0 = random_matrix(rng, d_out, d_in);
  const Eigen::MatrixXd m = random_matrix(rng, d_in, d_in);
  const Eigen::MatrixXd p0 =
      m * m.transpose() / static_cast<double>(d_in) + 0.5 * Eigen::MatrixXd::Identity(d_in, d_in);
  const Eigen::MatrixXd a = random_matrix(rng, d_in, samples);
  const Eigen::MatrixXd z =
      random_matrix(rng, d_out, d_in) * a + random_matrix(rng, d_out, samples);

  // core/kalman: one covariance-form RLS update per sample.
  auto backend = make_backend<double>("cpu");
  SharedRowRls<double> rls(*backend, JitterConfig{});
  ParameterBlock<double> block =
      make_shared_row_block(*backend, 1, to_backend(*backend, w0), to_backend(*backend, p0));
  for (int n = 0; n < samples; ++n) {
    const Eigen::MatrixXd an = a.col(n);
    const Eigen::MatrixXd zn = z.col(n);
    ASSERT_EQ(rls.update(block, to_backend(*backend, an), to_backend(*backend, zn), r),
              UpdateStatus::applied);
  }
  const Eigen::MatrixXd w_sequential = to_host(*backend, block.mean);
  const Eigen::MatrixXd p_sequential = to_host(*backend, block.covariance);

  // Batched information form: D = sum (z - W0 a) a^T, one step.
  Eigen::MatrixXd w = w0;
  Eigen::MatrixXd l = p0.inverse();
  const Eigen::MatrixXd increment = a * a.transpose() / r;
  const Eigen::MatrixXd cross = (z - w0 * a) * a.transpose() / r;
  const SharedRowOutcome outcome =
      shared_row_information_update(w, l, increment, cross, 1.0, 1.0, JitterConfig{});
  ASSERT_TRUE(outcome.applied);
  EXPECT_LT(relative_error(w, w_sequential), 1e-11);
  EXPECT_LT(relative_error(l.inverse(), p_sequential), 1e-11);
}

TEST(SharedRowInformation, ForgettingPullsTowardThePrior) {
  // lambda < 1: L = lambda L + (1 - lambda) L0 + increment, so with no data L relaxes to L0.
  Eigen::MatrixXd w = Eigen::MatrixXd::Zero(1, 2);
  Eigen::MatrixXd l = 10.0 * Eigen::MatrixXd::Identity(2, 2);
  const Eigen::MatrixXd zero = Eigen::MatrixXd::Zero(2, 2);
  for (int k = 0; k < 200; ++k)
    ASSERT_TRUE(shared_row_information_update(w, l, zero, Eigen::MatrixXd::Zero(1, 2), 0.9, 2.0,
                                              JitterConfig{})
                    .applied);
  EXPECT_NEAR(l(0, 0), 2.0, 1e-8);
  EXPECT_NEAR(l(0, 1), 0.0, 1e-12);
}

TEST(SharedRowInformation, NonFiniteOrIndefiniteLeavesTheBlockUntouched) {
  Eigen::MatrixXd w = Eigen::MatrixXd::Constant(2, 3, 0.5);
  Eigen::MatrixXd l = Eigen::MatrixXd::Identity(3, 3);
  const Eigen::MatrixXd w_before = w;
  const Eigen::MatrixXd l_before = l;
  Eigen::MatrixXd cross = Eigen::MatrixXd::Ones(2, 3);
  cross(1, 2) = std::numeric_limits<double>::quiet_NaN();
  SharedRowOutcome outcome = shared_row_information_update(w, l, Eigen::MatrixXd::Identity(3, 3),
                                                           cross, 1.0, 1.0, JitterConfig{});
  EXPECT_FALSE(outcome.applied);
  EXPECT_TRUE(outcome.nonfinite);
  EXPECT_EQ(w, w_before);
  EXPECT_EQ(l, l_before);

  // A strongly indefinite increment: jitter (max 2 retries of 1e-9 relative) cannot rescue it.
  JitterConfig jitter;
  jitter.max_retries = 2;
  outcome = shared_row_information_update(w, l, -5.0 * Eigen::MatrixXd::Identity(3, 3),
                                          Eigen::MatrixXd::Ones(2, 3), 1.0, 1.0, jitter);
  EXPECT_FALSE(outcome.applied);
  EXPECT_FALSE(outcome.nonfinite);
  EXPECT_EQ(outcome.jitter_retries, 2);
  EXPECT_EQ(w, w_before);
  EXPECT_EQ(l, l_before);
}

TEST(MeanFieldSoftmax, ShermanMorrisonEqualsDenseSolve) {
  std::mt19937_64 rng(5);
  Eigen::VectorXd pbar = random_matrix(rng, 12, 1).array().exp().matrix();
  pbar /= pbar.sum();
  const Eigen::MatrixXd x = random_matrix(rng, 12, 7);
  for (const double delta : {1e-3, 1e-1}) {
    const Eigen::MatrixXd g = mean_field_softmax_factor(pbar, delta);
    const Eigen::MatrixXd expected = g.ldlt().solve(x);
    EXPECT_LT(relative_error(mean_field_softmax_solve(pbar, delta, x), expected), 1e-12);
  }
  EXPECT_THROW(mean_field_softmax_solve(pbar, 0.0, x), std::invalid_argument);
}

TEST(BlockPlacement, LongestFirstToTheLightestRankDeterministically) {
  // Costs 27, 8, 8, 1 on 2 ranks: 27 -> 0, 8 -> 1, 8 -> 1, 1 -> 1.
  EXPECT_EQ(place_blocks_lpt({8.0, 27.0, 1.0, 8.0}, 2), (std::vector<int>{1, 0, 1, 1}));
  EXPECT_EQ(place_blocks_lpt({3.0, 3.0, 3.0}, 4), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(place_blocks_lpt({5.0, 1.0}, 1), (std::vector<int>{0, 0}));
  EXPECT_THROW(place_blocks_lpt({1.0}, 0), std::invalid_argument);
  EXPECT_THROW(place_blocks_lpt({-1.0}, 2), std::invalid_argument);
}

}  // namespace
}  // namespace kwm::lm
