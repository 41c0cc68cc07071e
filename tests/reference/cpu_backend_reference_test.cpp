// The CPU fp64 backend is the reference every other backend is compared with, so it is itself
// checked here against textbook formulas written out with plain loops and dense Eigen algebra.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <random>

#include "core/backend/backend.hpp"
#include "core/backend/host_transfer.hpp"
#include "tests/reference/random_matrix.hpp"

namespace kwm {
namespace {

using Mat = Eigen::MatrixXd;

using kwm::testing::random_matrix;

Mat random_spd(Index n, unsigned seed) {
  const Mat a = random_matrix(n, n, seed);
  return a * a.transpose() + double(n) * Mat::Identity(n, n);
}

class CpuReference : public ::testing::Test {
 protected:
  std::unique_ptr<Backend<double>> b = make_backend<double>("cpu");
};

// Tolerance: every check below is a handful of O(n) dot products of O(1) numbers, so 1e-12
// absolute is ~1e4 ulp of headroom in fp64.
constexpr double kTol = 1e-12;

TEST_F(CpuReference, GemmAllTransposesMatchLoops) {
  const Mat a = random_matrix(5, 3, 1), bt = random_matrix(4, 3, 2);
  const Mat c0 = random_matrix(5, 4, 3);
  auto ta = to_backend(*b, a), tb = to_backend(*b, bt), tc = to_backend(*b, c0);
  b->gemm(Op::none, Op::transpose, 2.0, ta, tb, 0.5, tc);
  Mat expect(5, 4);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 4; ++j) {
      double s = 0;
      for (int k = 0; k < 3; ++k) s += a(i, k) * bt(j, k);
      expect(i, j) = 2.0 * s + 0.5 * c0(i, j);
    }
  EXPECT_LT((to_host(*b, tc) - expect).cwiseAbs().maxCoeff(), kTol);

  auto tat = to_backend(*b, Mat(a.transpose()));
  auto tc2 = b->allocate(5, 4);
  b->gemm(Op::transpose, Op::transpose, 1.0, tat, to_backend(*b, bt), 0.0, tc2);
  EXPECT_LT((to_host(*b, tc2) - a * bt.transpose()).cwiseAbs().maxCoeff(), kTol);
}

TEST_F(CpuReference, SyrkWritesFullSymmetricMatrix) {
  const Mat a = random_matrix(6, 3, 4);
  auto ta = to_backend(*b, a);
  auto c = b->allocate(6, 6);
  b->syrk(Op::none, 1.5, ta, 0.0, c);
  EXPECT_LT((to_host(*b, c) - 1.5 * a * a.transpose()).cwiseAbs().maxCoeff(), kTol);
  auto c2 = to_backend(*b, Mat(Mat::Identity(3, 3)));
  b->syrk(Op::transpose, 1.0, ta, 2.0, c2);
  EXPECT_LT(
      (to_host(*b, c2) - (a.transpose() * a + 2.0 * Mat::Identity(3, 3))).cwiseAbs().maxCoeff(),
      kTol);
}

TEST_F(CpuReference, RiccatiDowndateEqualsSymmetrisedKUt) {
  const Mat p = random_spd(7, 5), k = random_matrix(7, 2, 6), u = random_matrix(7, 2, 7);
  auto tp = to_backend(*b, p);
  b->riccati_downdate(tp, to_backend(*b, k), to_backend(*b, u));
  const Mat expect = p - 0.5 * (k * u.transpose() + u * k.transpose());
  const Mat got = to_host(*b, tp);
  EXPECT_LT((got - expect).cwiseAbs().maxCoeff(), kTol);
  EXPECT_EQ(got, got.transpose());  // symmetric bit for bit

  Mat d = p.diagonal();
  auto td = to_backend(*b, d);
  b->diagonal_downdate(td, to_backend(*b, k), to_backend(*b, u));
  for (int i = 0; i < 7; ++i)
    EXPECT_NEAR(to_host(*b, td)(i, 0), p(i, i) - k.row(i).dot(u.row(i)), kTol);
}

TEST_F(CpuReference, CholeskySolvesBothSides) {
  const Mat s = random_spd(4, 8), rhs = random_matrix(4, 3, 9), lhs = random_matrix(5, 4, 10);
  auto ts = to_backend(*b, s);
  ASSERT_TRUE(b->cholesky(ts));
  const Mat l = to_host(*b, ts);
  EXPECT_LT((l * l.transpose() - s).cwiseAbs().maxCoeff(), 1e-10);
  EXPECT_EQ(l.triangularView<Eigen::StrictlyUpper>().toDenseMatrix().cwiseAbs().maxCoeff(), 0.0);
  auto tr = to_backend(*b, rhs);
  b->cholesky_solve(ts, tr);
  EXPECT_LT((s * to_host(*b, tr) - rhs).cwiseAbs().maxCoeff(), 1e-10);
  auto tl = to_backend(*b, lhs);
  b->cholesky_solve_right(ts, tl);
  EXPECT_LT((to_host(*b, tl) * s - lhs).cwiseAbs().maxCoeff(), 1e-10);

  Mat not_pd = Mat::Identity(3, 3);
  not_pd(2, 2) = -1.0;
  auto tn = to_backend(*b, not_pd);
  EXPECT_FALSE(b->cholesky(tn));
}

TEST_F(CpuReference, EigenvalueClampRebuildsMatrix) {
  Mat q = random_matrix(4, 4, 11).householderQr().householderQ();
  Eigen::Vector4d w(1e-9, 0.5, 2.0, 1e9);
  const Mat a = q * w.asDiagonal() * q.transpose();
  auto ta = to_backend(*b, a);
  auto tw = b->allocate(4, 1);
  b->symmetric_eigenvalues(ta, tw);
  EXPECT_NEAR(to_host(*b, tw)(1, 0), 0.5, 1e-6);
  EXPECT_EQ(b->clamp_eigenvalues(ta, 1e-3, 1e3), 2);
  Eigen::Vector4d clamped(1e-3, 0.5, 2.0, 1e3);
  // The input held an eigenvalue of 1e9, so its decomposition is accurate to ~1e9 * eps ~ 2e-7.
  EXPECT_LT((to_host(*b, ta) - q * clamped.asDiagonal() * q.transpose()).cwiseAbs().maxCoeff(),
            1e-6);
}

TEST_F(CpuReference, ElementwiseKernels) {
  const Mat a = random_spd(3, 12);
  auto ta = to_backend(*b, a);
  EXPECT_NEAR(b->trace(ta), a.trace(), kTol);
  b->add_identity(2.0, ta);
  b->add_diagonal(to_backend(*b, Mat(Eigen::Vector3d(1, 2, 3))), ta);
  Mat expect = a;
  expect.diagonal() += Eigen::Vector3d(3, 4, 5);
  EXPECT_LT((to_host(*b, ta) - expect).cwiseAbs().maxCoeff(), kTol);
  auto tv = to_backend(*b, Mat(Eigen::Vector3d(1, -2, 4)));
  b->scale_rows(tv, ta);
  EXPECT_NEAR(to_host(*b, ta)(1, 2), -2.0 * expect(1, 2), kTol);
  EXPECT_NEAR(b->dot(tv, tv), 21.0, kTol);
  EXPECT_TRUE(b->all_finite(ta));
  Mat bad = a;
  bad(1, 1) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_FALSE(b->all_finite(to_backend(*b, bad)));
  Mat asym = random_matrix(3, 3, 13);
  auto tasym = to_backend(*b, asym);
  b->symmetrize(tasym);
  EXPECT_LT((to_host(*b, tasym) - 0.5 * (asym + asym.transpose())).cwiseAbs().maxCoeff(), kTol);
}

TEST_F(CpuReference, ShapeMismatchNamesKernelAndDims) {
  auto a = b->allocate(3, 2), c = b->allocate(3, 3);
  try {
    b->gemm(Op::none, Op::none, 1.0, a, a, 0.0, c);
    FAIL() << "gemm accepted a 3x2 by 3x2 product";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("gemm"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("3x2"), std::string::npos);
  }
  EXPECT_THROW(make_backend<double>("tpu"), std::invalid_argument);
}

}  // namespace
}  // namespace kwm
