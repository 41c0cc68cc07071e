// Exact learners on a linear-Gaussian model (ALGORITHMS.md section 11.1, 11.3): the DEKF with one
// dense block and the information form both equal the closed-form Bayesian linear regression
// posterior, batch least squares under a huge prior, and the joint-Gaussian conditioning solve.
// Tolerances (relative Frobenius): fp64 1e-10 (posterior condition numbers < 1e2, ~100
// sequential updates), fp32 2e-4 (24-bit mantissa times the same growth).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/kalman/decoupled_ekf.hpp"
#include "core/kalman/information_filter.hpp"
#include "core/kalman/predict.hpp"
#include "tests/kalman/kalman_test_support.hpp"

namespace kwm {
namespace {

using test::MatrixXd;
using test::relative_error;
using test::VectorXd;

struct RegressionData {
  MatrixXd prior_covariance;
  VectorXd prior_mean;
  std::vector<MatrixXd> h;  // one m x n design block per update
  std::vector<VectorXd> y;
  double r = 0.0;
};

RegressionData make_regression(std::uint64_t seed, Eigen::Index n, Eigen::Index m, int updates,
                               double r) {
  std::mt19937_64 rng(seed);
  RegressionData data;
  data.prior_covariance = test::random_spd(rng, n, 0.5, 2.0);
  data.prior_mean = test::random_matrix(rng, n, 1);
  data.r = r;
  const VectorXd truth = test::random_matrix(rng, n, 1);
  for (int t = 0; t < updates; ++t) {
    data.h.push_back(test::random_matrix(rng, m, n));
    data.y.push_back(data.h.back() * truth + std::sqrt(r) * test::random_matrix(rng, m, 1));
  }
  return data;
}

// Closed form: P = (P0^-1 + X^T X / r)^-1, mean = P (P0^-1 m0 + X^T y / r).
void closed_form_posterior(const RegressionData& d, MatrixXd& covariance, VectorXd& mean) {
  const MatrixXd prior_precision = d.prior_covariance.inverse();
  MatrixXd precision = prior_precision;
  VectorXd vector = prior_precision * d.prior_mean;
  for (std::size_t t = 0; t < d.h.size(); ++t) {
    precision += d.h[t].transpose() * d.h[t] / d.r;
    vector += d.h[t].transpose() * d.y[t] / d.r;
  }
  covariance = precision.inverse();
  mean = precision.ldlt().solve(vector);
}

template <typename T>
class LinearGaussian : public ::testing::Test {
 protected:
  test::Fixture<T> fx;
  double tol = test::tolerance<T>(1e-10, 2e-4);
};
TYPED_TEST_SUITE(LinearGaussian, test::ScalarTypes);

TYPED_TEST(LinearGaussian, DenseDekfEqualsBayesianLinearRegression) {
  using T = TypeParam;
  auto& f = this->fx;
  for (const Eigen::Index m : {1, 3}) {
    const RegressionData d = make_regression(11 + static_cast<std::uint64_t>(m), 6, m, 40, 0.3);
    ParameterBlock<T> block =
        make_dense_block(f.be(), 7, f.up(d.prior_mean), f.up(d.prior_covariance));
    DecoupledEkf<T> ekf(f.be(), UpdateConfig{});
    const MatrixXd r = d.r * MatrixXd::Identity(m, m);
    for (std::size_t t = 0; t < d.h.size(); ++t) {
      ASSERT_TRUE(test::linear_step(f, ekf, {&block}, d.h[t], d.y[t], r).applied());
    }
    MatrixXd covariance;
    VectorXd mean;
    closed_form_posterior(d, covariance, mean);
    EXPECT_LT(relative_error(f.down(block.mean), mean), this->tol) << "m = " << m;
    EXPECT_LT(relative_error(f.down(block.covariance), covariance), this->tol) << "m = " << m;
    EXPECT_EQ(block.counters.updates, 40);
    EXPECT_EQ(ekf.counters().skips, 0);
  }
}

TEST(LinearGaussianFp64, DekfWithHugePriorEqualsBatchLeastSquares) {
  // Prior P0 = 1e8 I: the posterior mean is least squares up to r / 1e8 relative, and the
  // first downdate cancels ~8 digits, so 1e-6 relative.
  test::Fixture<double> f;
  std::mt19937_64 rng(3);
  const Eigen::Index n = 5;
  const int samples = 200;
  const MatrixXd x = test::random_matrix(rng, samples, n);
  const VectorXd truth = test::random_matrix(rng, n, 1);
  const VectorXd y = x * truth + 0.1 * test::random_matrix(rng, samples, 1);
  ParameterBlock<double> block =
      make_dense_block(f.be(), 1, f.up(VectorXd::Zero(n)), f.up(1e8 * MatrixXd::Identity(n, n)));
  DecoupledEkf<double> ekf(f.be(), UpdateConfig{});
  for (int t = 0; t < samples; ++t) {
    ASSERT_TRUE(test::linear_step(f, ekf, {&block}, x.row(t), y.segment(t, 1),
                                  MatrixXd::Constant(1, 1, 0.01))
                    .applied());
  }
  const VectorXd least_squares = x.colPivHouseholderQr().solve(y);
  EXPECT_LT(relative_error(f.down(block.mean), least_squares), 1e-6);
  // Posterior covariance r (X^T X)^-1.
  const MatrixXd covariance = 0.01 * (x.transpose() * x).inverse();
  EXPECT_LT(relative_error(f.down(block.covariance), covariance), 1e-6);
}

// Conditioning the joint Gaussian (theta, y) on y by the joint precision (Schur complement):
// posterior covariance (Lambda_tt)^-1, mean m - Lambda_tt^-1 Lambda_ty (y - H m).
void joint_gaussian_posterior(const MatrixXd& p, const VectorXd& m, const MatrixXd& h,
                              const MatrixXd& r, const VectorXd& y, MatrixXd& covariance,
                              VectorXd& mean) {
  const Eigen::Index n = p.rows();
  const Eigen::Index k = h.rows();
  MatrixXd joint(n + k, n + k);
  joint << p, p * h.transpose(), h * p, h * p * h.transpose() + r;
  const MatrixXd lambda = joint.fullPivLu().inverse();
  covariance = lambda.topLeftCorner(n, n).inverse();
  mean = m - covariance * lambda.topRightCorner(n, k) * (y - h * m);
}

TYPED_TEST(LinearGaussian, MixedBlocksEqualJointGaussianConditioning) {
  // One update from a block-diagonal prior is exact for the mean and for each block's own
  // covariance (the DEKF drops only the cross-block terms it creates), with a full R.
  using T = TypeParam;
  auto& f = this->fx;
  std::mt19937_64 rng(5);
  const Eigen::Index m = 4;
  const MatrixXd p1 = test::random_spd(rng, 3);
  const VectorXd p2 = (VectorXd(4) << 0.7, 1.3, 2.0, 0.4).finished();
  const MatrixXd p3 = test::random_spd(rng, 2);
  MatrixXd prior = MatrixXd::Zero(9, 9);
  prior.block(0, 0, 3, 3) = p1;
  prior.block(3, 3, 4, 4) = p2.asDiagonal();
  prior.block(7, 7, 2, 2) = p3;
  const VectorXd prior_mean = test::random_matrix(rng, 9, 1);
  const MatrixXd h = test::random_matrix(rng, m, 9);
  const MatrixXd r = test::random_spd(rng, m, 0.2, 0.5);
  const VectorXd y = test::random_matrix(rng, m, 1, 2.0);

  ParameterBlock<T> b1 = make_dense_block(f.be(), 10, f.up(prior_mean.segment(0, 3)), f.up(p1));
  ParameterBlock<T> b2 = make_diagonal_block(f.be(), 11, f.up(prior_mean.segment(3, 4)), f.up(p2));
  ParameterBlock<T> b3 = make_dense_block(f.be(), 12, f.up(prior_mean.segment(7, 2)), f.up(p3));
  DecoupledEkf<T> ekf(f.be(), UpdateConfig{});
  ASSERT_TRUE(test::linear_step(f, ekf, {&b1, &b2, &b3}, h, y, r).applied());

  MatrixXd covariance;
  VectorXd mean;
  joint_gaussian_posterior(prior, prior_mean, h, r, y, covariance, mean);
  EXPECT_LT(relative_error(test::stacked_mean(f, {&b1, &b2, &b3}), mean), this->tol);
  EXPECT_LT(relative_error(f.down(b1.covariance), covariance.block(0, 0, 3, 3)), this->tol);
  EXPECT_LT(relative_error(f.down(b2.covariance), covariance.diagonal().segment(3, 4)), this->tol);
  EXPECT_LT(relative_error(f.down(b3.covariance), covariance.block(7, 7, 2, 2)), this->tol);

  // One dense block over all nine parameters: the full posterior covariance.
  ParameterBlock<T> all = make_dense_block(f.be(), 13, f.up(prior_mean), f.up(prior));
  ASSERT_TRUE(test::linear_step(f, ekf, {&all}, h, y, r).applied());
  EXPECT_LT(relative_error(f.down(all.mean), mean), this->tol);
  EXPECT_LT(relative_error(f.down(all.covariance), covariance), this->tol);
}

TYPED_TEST(LinearGaussian, InformationFormBatchEqualsClosedForm) {
  using T = TypeParam;
  auto& f = this->fx;
  const RegressionData d = make_regression(21, 5, 2, 30, 0.5);
  ParameterBlock<T> block = make_dense_block(f.be(), 2, f.up(d.prior_mean),
                                             f.up(d.prior_covariance.inverse()), Form::information);
  InformationFilter<T> filter(f.be(), JitterConfig{});
  // One batch: every e_n at the prior mean, one solve.
  InformationStatistics<T> stats = filter.zero_statistics(5);
  const MatrixXd r = d.r * MatrixXd::Identity(2, 2);
  for (std::size_t t = 0; t < d.h.size(); ++t) {
    const VectorXd e = d.y[t] - d.h[t] * d.prior_mean;
    ASSERT_TRUE(filter.accumulate(stats, f.up(d.h[t]), f.up(e), f.up(r)));
  }
  EXPECT_EQ(stats.observations, 30);
  ASSERT_EQ(filter.apply(block, stats), UpdateStatus::applied);
  MatrixXd covariance;
  VectorXd mean;
  closed_form_posterior(d, covariance, mean);
  EXPECT_LT(relative_error(f.down(block.mean), mean), this->tol);
  EXPECT_LT(relative_error(f.down(block.information), covariance.inverse()), this->tol);
}

TYPED_TEST(LinearGaussian, InformationFormEqualsCovarianceFormWithForgetting) {
  // Sequential, one observation per step, forgetting lambda: covariance form predicts
  // P <- P / lambda then updates; information form applies L <- lambda L + H^T R^-1 H.
  using T = TypeParam;
  auto& f = this->fx;
  const double lambda = 0.97;
  const RegressionData d = make_regression(31, 4, 2, 50, 0.2);
  // A non-diagonal R exercises R^-1 through its Cholesky factor.
  const MatrixXd r = (MatrixXd(2, 2) << 0.2, 0.05, 0.05, 0.3).finished();
  ParameterBlock<T> cov = make_dense_block(f.be(), 3, f.up(d.prior_mean), f.up(d.prior_covariance));
  ParameterBlock<T> info = make_dense_block(f.be(), 4, f.up(d.prior_mean),
                                            f.up(d.prior_covariance.inverse()), Form::information);
  DecoupledEkf<T> ekf(f.be(), UpdateConfig{});
  InformationFilter<T> filter(f.be(), JitterConfig{});
  PredictConfig forgetting;
  forgetting.dynamics = Dynamics::forgetting;
  forgetting.forgetting = lambda;
  for (std::size_t t = 0; t < d.h.size(); ++t) {
    predict(f.be(), cov, forgetting);
    ASSERT_TRUE(test::linear_step(f, ekf, {&cov}, d.h[t], d.y[t], r).applied());
    InformationStatistics<T> stats = filter.zero_statistics(4);
    const VectorXd e = d.y[t] - d.h[t] * f.down(info.mean);
    ASSERT_TRUE(filter.accumulate(stats, f.up(d.h[t]), f.up(e), f.up(r)));
    ASSERT_EQ(filter.apply(info, stats, static_cast<T>(lambda)), UpdateStatus::applied);
  }
  EXPECT_LT(relative_error(f.down(info.mean), f.down(cov.mean)), this->tol);
  const MatrixXd product = f.down(info.information) * f.down(cov.covariance);
  EXPECT_LT(relative_error(product, MatrixXd::Identity(4, 4)), this->tol);
}

}  // namespace
}  // namespace kwm
