// Shared-row (Kronecker) blocks, ALGORITHMS.md section 4: per-sample RLS, batched statistics
// and a dense block of size d_out * d_in with covariance I (x) P all equal the closed-form
// posterior W = (W0 L0 + Z A^T / r)(L0 + A A^T / r)^-1 (lambda = 1), and with forgetting the
// per-sample recursion equals L <- lambda L + a a^T / r, B <- lambda B + z a^T / r, W = B L^-1.
// Tolerances (relative Frobenius): fp64 1e-10, fp32 5e-4 (30-60 updates, condition ~1e2).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/kalman/decoupled_ekf.hpp"
#include "core/kalman/shared_row_rls.hpp"
#include "tests/kalman/kalman_test_support.hpp"

namespace kwm {
namespace {

using test::MatrixXd;
using test::relative_error;
using test::VectorXd;

// I_k (x) p: block diagonal with k copies of p.
MatrixXd identity_kron(Eigen::Index k, const MatrixXd& p) {
  MatrixXd out = MatrixXd::Zero(k * p.rows(), k * p.cols());
  for (Eigen::Index i = 0; i < k; ++i)
    out.block(i * p.rows(), i * p.cols(), p.rows(), p.cols()) = p;
  return out;
}

template <typename T>
class SharedRow : public ::testing::Test {
 protected:
  test::Fixture<T> fx;
  double tol = test::tolerance<T>(1e-10, 5e-4);
};
TYPED_TEST_SUITE(SharedRow, test::ScalarTypes);

TYPED_TEST(SharedRow, PerSampleEqualsBatchedEqualsDenseKroneckerBlock) {
  using T = TypeParam;
  auto& f = this->fx;
  std::mt19937_64 rng(8);
  const Eigen::Index d_out = 3;
  const Eigen::Index d_in = 4;
  const int samples = 30;
  const double r = 0.2;
  const MatrixXd w0 = test::random_matrix(rng, d_out, d_in);
  const MatrixXd p0 = test::random_spd(rng, d_in, 0.5, 1.5);
  const MatrixXd a = test::random_matrix(rng, d_in, samples);
  const MatrixXd w_true = test::random_matrix(rng, d_out, d_in);
  const MatrixXd z = w_true * a + std::sqrt(r) * test::random_matrix(rng, d_out, samples);

  // Closed form.
  const MatrixXd l0 = p0.inverse();
  const MatrixXd l = l0 + a * a.transpose() / r;
  const MatrixXd w = (w0 * l0 + z * a.transpose() / r) * l.inverse();
  const MatrixXd p = l.inverse();

  // Per sample.
  SharedRowRls<T> rls(f.be(), JitterConfig{});
  ParameterBlock<T> sample_block = make_shared_row_block(f.be(), 1, f.up(w0), f.up(p0));
  for (int n = 0; n < samples; ++n) {
    ASSERT_EQ(rls.update(sample_block, f.up(a.col(n)), f.up(z.col(n)), static_cast<T>(r)),
              UpdateStatus::applied);
  }
  EXPECT_LT(relative_error(f.down(sample_block.mean), w), this->tol);
  EXPECT_LT(relative_error(f.down(sample_block.covariance), p), this->tol);

  // Batched, in three mini-batches of 10 (lambda = 1: order and grouping do not matter).
  ParameterBlock<T> batch_block =
      make_shared_row_block(f.be(), 2, f.up(w0), f.up(l0), Form::information);
  for (int start = 0; start < samples; start += 10) {
    SharedRowStatistics<T> stats = rls.zero_statistics(d_out, d_in);
    ASSERT_TRUE(rls.accumulate(stats, f.up(a.middleCols(start, 10)), f.up(z.middleCols(start, 10)),
                               static_cast<T>(r)));
    EXPECT_EQ(stats.samples, 10);
    ASSERT_EQ(rls.apply(batch_block, stats), UpdateStatus::applied);
  }
  EXPECT_LT(relative_error(f.down(batch_block.mean), w), this->tol);
  EXPECT_LT(relative_error(f.down(batch_block.information), l), this->tol);

  // Dense block over theta = vec(W^T) with covariance I (x) P0 and H = I (x) a^T, R = r I.
  const MatrixXd w0_row_major = w0.transpose();
  const VectorXd theta0 = Eigen::Map<const VectorXd>(w0_row_major.data(), d_out * d_in);
  ParameterBlock<T> dense =
      make_dense_block(f.be(), 3, f.up(theta0), f.up(identity_kron(d_out, p0)));
  DecoupledEkf<T> ekf(f.be(), UpdateConfig{});
  for (int n = 0; n < samples; ++n) {
    const MatrixXd h = identity_kron(d_out, a.col(n).transpose());
    ASSERT_TRUE(
        test::linear_step(f, ekf, {&dense}, h, z.col(n), r * MatrixXd::Identity(d_out, d_out))
            .applied());
  }
  const MatrixXd w_row_major = w.transpose();
  EXPECT_LT(relative_error(f.down(dense.mean),
                           Eigen::Map<const VectorXd>(w_row_major.data(), d_out * d_in)),
            this->tol);
  EXPECT_LT(relative_error(f.down(dense.covariance), identity_kron(d_out, p)), this->tol);
}

TYPED_TEST(SharedRow, ForgettingPerSampleEqualsInformationRecursion) {
  using T = TypeParam;
  auto& f = this->fx;
  std::mt19937_64 rng(12);
  const Eigen::Index d_out = 2;
  const Eigen::Index d_in = 5;
  const int samples = 60;
  const double r = 0.5;
  const double lambda = 0.95;
  const MatrixXd w0 = test::random_matrix(rng, d_out, d_in);
  const MatrixXd p0 = test::random_spd(rng, d_in, 0.5, 1.0);
  MatrixXd l = p0.inverse();
  MatrixXd b = w0 * l;
  SharedRowRls<T> rls(f.be(), JitterConfig{});
  ParameterBlock<T> sample_block = make_shared_row_block(f.be(), 1, f.up(w0), f.up(p0));
  ParameterBlock<T> batch_block =
      make_shared_row_block(f.be(), 2, f.up(w0), f.up(p0.inverse()), Form::information);
  for (int n = 0; n < samples; ++n) {
    const MatrixXd a = test::random_matrix(rng, d_in, 1);
    const MatrixXd z = test::random_matrix(rng, d_out, 1);
    l = lambda * l + a * a.transpose() / r;
    b = lambda * b + z * a.transpose() / r;
    ASSERT_EQ(rls.update(sample_block, f.up(a), f.up(z), static_cast<T>(r), static_cast<T>(lambda)),
              UpdateStatus::applied);
    SharedRowStatistics<T> stats = rls.zero_statistics(d_out, d_in);
    ASSERT_TRUE(rls.accumulate(stats, f.up(a), f.up(z), static_cast<T>(r)));
    ASSERT_EQ(rls.apply(batch_block, stats, static_cast<T>(lambda)), UpdateStatus::applied);
  }
  const MatrixXd w = b * l.inverse();
  EXPECT_LT(relative_error(f.down(sample_block.mean), w), this->tol);
  EXPECT_LT(relative_error(f.down(sample_block.covariance), l.inverse()), this->tol);
  EXPECT_LT(relative_error(f.down(batch_block.mean), w), this->tol);
  EXPECT_LT(relative_error(f.down(batch_block.information), l), this->tol);
  EXPECT_LT(relative_error(f.down(batch_block.information_vector), b), this->tol);
}

TEST(SharedRowChecks, RejectsWrongBlocksAndShapes) {
  test::Fixture<double> f;
  SharedRowRls<double> rls(f.be(), JitterConfig{});
  ParameterBlock<double> dense =
      make_dense_block(f.be(), 1, f.up(VectorXd::Zero(2)), f.up(MatrixXd::Identity(2, 2)));
  EXPECT_THROW(rls.update(dense, f.up(VectorXd::Ones(2)), f.up(VectorXd::Ones(1)), 1.0),
               std::invalid_argument);
  ParameterBlock<double> block =
      make_shared_row_block(f.be(), 2, f.up(MatrixXd::Zero(2, 3)), f.up(MatrixXd::Identity(3, 3)));
  EXPECT_THROW(rls.update(block, f.up(VectorXd::Ones(2)), f.up(VectorXd::Ones(2)), 1.0),
               std::invalid_argument);
  EXPECT_THROW(rls.update(block, f.up(VectorXd::Ones(3)), f.up(VectorXd::Ones(2)), -1.0),
               std::invalid_argument);
  SharedRowStatistics<double> stats = rls.zero_statistics(2, 3);
  EXPECT_THROW(rls.apply(block, stats), std::invalid_argument);  // needs information form
}

}  // namespace
}  // namespace kwm
