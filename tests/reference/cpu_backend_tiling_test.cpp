// The CPU backend's cache-tiled symmetric kernels (core/backend/cpu/symmetric_tiles.hpp) checked
// against dense Eigen formulas on sizes that are not multiples of the 32 x 32 tile or the 256-row
// panel, on both branches of riccati_downdate (fused single pass for m <= 16, triangular GEMM
// above), and on matrices large enough (>= 32 MiB) to take the streaming-store mirror.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <limits>
#include <random>
#include <string>

#include "core/backend/backend.hpp"
#include "core/backend/host_transfer.hpp"
#include "tests/reference/random_matrix.hpp"

namespace kwm {
namespace {

using Mat = Eigen::MatrixXd;

using kwm::testing::random_matrix;

// A symmetric matrix whose two triangles differ in the last bits would hide a kernel that reads
// the wrong triangle, so P is built symmetric bit for bit.
Mat random_symmetric(Index n, unsigned seed) {
  const Mat a = random_matrix(n, n, seed);
  Mat p = a + a.transpose();
  p.template triangularView<Eigen::StrictlyUpper>() = p.transpose();
  return p;
}

template <typename T>
void expect_exactly_symmetric(const HostMatrix<T>& got, const std::string& at) {
  ASSERT_EQ(got.rows(), got.cols()) << at;
  EXPECT_TRUE(got == got.transpose()) << "not symmetric bit for bit" << at;
}

// Each entry is P_ij minus a length-2m sum of O(1) products (the fp64 reference rounds too).
template <typename T>
void check_downdate(Backend<T>& b, Index n, Index m, unsigned seed) {
  const std::string at = " n=" + std::to_string(n) + " m=" + std::to_string(m);
  const Mat p = random_symmetric(n, seed);
  const Mat k = random_matrix(n, m, seed + 1), u = random_matrix(n, m, seed + 2);
  auto tp = to_backend(b, p);
  b.riccati_downdate(tp, to_backend(b, k), to_backend(b, u));
  const HostMatrix<T> got = to_host(b, tp);
  expect_exactly_symmetric<T>(got, at);
  const Mat expect = p - 0.5 * (k * u.transpose() + u * k.transpose());
  const double eps = std::numeric_limits<T>::epsilon();
  const double tol = 4.0 * static_cast<double>(2 * m + 2) * eps * (4.0 + 2.0 * m);
  EXPECT_LT((got.template cast<double>() - expect).cwiseAbs().maxCoeff(), tol) << at;
}

TEST(CpuTiling, RiccatiDowndateBothBranchesAndRaggedTiles) {
  auto b = make_backend<double>("cpu");
  unsigned seed = 1;
  for (const Index n : {Index{1}, Index{2}, Index{31}, Index{32}, Index{33}, Index{100}, Index{255},
                        Index{256}, Index{257}, Index{300}, Index{545}})
    for (const Index m : {Index{1}, Index{2}, Index{15}, Index{16}, Index{17}, Index{40}})
      check_downdate(*b, n, m, seed += 3);
}

TEST(CpuTiling, RiccatiDowndateLargeMatrixStreamingMirror) {
  // 2100^2 fp64 and 2900^2 fp32 are both above the 32 MiB streaming threshold; neither is a
  // multiple of the tile or the panel.
  auto b64 = make_backend<double>("cpu");
  check_downdate(*b64, 2100, 1, 101);
  check_downdate(*b64, 2100, 20, 102);
  auto b32 = make_backend<float>("cpu");
  check_downdate(*b32, 2900, 1, 103);
  check_downdate(*b32, 2900, 17, 105);
}

TEST(CpuTiling, RiccatiDowndateIsDeterministic) {
  auto b = make_backend<double>("cpu");
  const Mat p = random_symmetric(333, 7), k = random_matrix(333, 3, 8),
            u = random_matrix(333, 3, 9);
  auto t1 = to_backend(*b, p), t2 = to_backend(*b, p);
  const auto tk = to_backend(*b, k), tu = to_backend(*b, u);
  b->riccati_downdate(t1, tk, tu);
  b->riccati_downdate(t2, tk, tu);
  EXPECT_TRUE(to_host(*b, t1) == to_host(*b, t2));
}

TEST(CpuTiling, SymmetrizeIsTheExactMeanOnEverySize) {
  auto b = make_backend<double>("cpu");
  for (const Index n :
       {Index{1}, Index{5}, Index{31}, Index{32}, Index{33}, Index{97}, Index{258}, Index{2100}}) {
    const Mat a = random_matrix(n, n, static_cast<unsigned>(n));
    auto ta = to_backend(*b, a);
    b->symmetrize(ta);
    const Mat got = to_host(*b, ta);
    // (a_ij + a_ji) / 2 is one rounding of a commutative sum: the same bits as the dense formula.
    EXPECT_TRUE(got == Mat(0.5 * (a + a.transpose()))) << " n=" << n;
  }
  auto b32 = make_backend<float>("cpu");
  const Mat a = random_matrix(2900, 2900, 11);
  auto ta = to_backend(*b32, a);
  b32->symmetrize(ta);
  const HostMatrix<float> af = a.cast<float>();
  EXPECT_TRUE(to_host(*b32, ta) == HostMatrix<float>(0.5f * (af + af.transpose())));
}

TEST(CpuTiling, SyrkMirrorsAndHonoursBeta) {
  auto b = make_backend<double>("cpu");
  for (const Index n : {Index{3}, Index{33}, Index{70}}) {
    const std::string at = " n=" + std::to_string(n);
    const Mat a = random_matrix(n, 5, 21), at5 = random_matrix(5, n, 22);
    // beta = 0 must not read C (BLAS semantics): NaN in C does not propagate.
    Mat c0 = Mat::Constant(n, n, std::numeric_limits<double>::quiet_NaN());
    auto tc = to_backend(*b, c0);
    b->syrk(Op::none, 1.5, to_backend(*b, a), 0.0, tc);
    Mat got = to_host(*b, tc);
    expect_exactly_symmetric<double>(got, at);
    EXPECT_LT((got - 1.5 * a * a.transpose()).cwiseAbs().maxCoeff(), 1e-12) << at;

    const Mat c1 = random_symmetric(n, 23);
    auto tc1 = to_backend(*b, c1);
    b->syrk(Op::transpose, -0.5, to_backend(*b, at5), 2.0, tc1);
    got = to_host(*b, tc1);
    expect_exactly_symmetric<double>(got, at);
    EXPECT_LT((got - (2.0 * c1 - 0.5 * at5.transpose() * at5)).cwiseAbs().maxCoeff(), 1e-12) << at;
  }
}

}  // namespace
}  // namespace kwm
