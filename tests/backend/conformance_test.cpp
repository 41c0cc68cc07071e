// Backend conformance: every Backend<T> method, on every backend, against the CPU fp64 backend
// run on the same (precision-rounded) inputs through the same interface (ggml's
// test-backend-ops). CUDA cases skip when no GPU is visible.
//
// Tolerances are relative to the norms of the operands and scale with the inner dimension k of
// the operation and with eps = the machine epsilon of the backend's type: the classical bound
// |fl(x) - x| <= k eps |A||B| of a length-k sum, with a small constant for the order in which a
// blocked or parallel implementation sums. The cpu fp64 case compares the reference with itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/backend/backend.hpp"
#include "core/backend/host_transfer.hpp"

namespace kwm {
namespace {

using Mat = HostMatrix<double>;

struct BackendCase {
  std::string name;  // "cpu" or "cuda"
  bool fp64;
};

std::string case_name(const testing::TestParamInfo<BackendCase>& info) {
  return info.param.name + (info.param.fp64 ? "_fp64" : "_fp32");
}

// The backend under test, the fp64 reference, and inputs rounded to the tested type so that
// both start from exactly the same numbers.
template <typename T>
struct Harness {
  using Scalar = T;
  static constexpr double eps = static_cast<double>(std::numeric_limits<T>::epsilon());

  explicit Harness(const std::string& name)
      : backend(make_backend<T>(name)), ref(make_backend<double>("cpu")), rng(20261128) {}

  static double round(double x) { return static_cast<double>(static_cast<T>(x)); }

  Mat random(Index rows, Index cols) {
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    Mat m(rows, cols);
    for (Index j = 0; j < cols; ++j)
      for (Index i = 0; i < rows; ++i) m(i, j) = round(uniform(rng));
    return m;
  }
  // Exactly symmetric, entries in [-1, 1].
  Mat symmetric(Index n) {
    const Mat b = random(n, n);
    return (0.5 * (b + b.transpose())).unaryExpr([](double x) { return round(x); });
  }
  // B B^T / n + I: eigenvalues in [1, ~2.4], so every solve below is well conditioned.
  Mat spd(Index n) {
    const Mat b = random(n, n);
    Mat a = b * b.transpose() / static_cast<double>(std::max<Index>(n, 1));
    a = 0.5 * (a + a.transpose());
    a += Mat::Identity(n, n);
    return a.unaryExpr([](double x) { return round(x); });
  }

  Tensor<T> put(const Mat& m) { return to_backend<T>(*backend, m); }
  Tensor<double> put_ref(const Mat& m) { return to_backend<double>(*ref, m); }
  Mat get(const Tensor<T>& t) { return to_host(*backend, t).template cast<double>(); }
  Mat get_ref(const Tensor<double>& t) { return to_host(*ref, t); }

  std::unique_ptr<Backend<T>> backend;
  std::unique_ptr<Backend<double>> ref;
  std::mt19937_64 rng;
};

// ||got - want||_F <= tol; NaN never passes.
void expect_close(const Mat& got, const Mat& want, double tol, const std::string& what) {
  ASSERT_EQ(got.rows(), want.rows()) << what;
  ASSERT_EQ(got.cols(), want.cols()) << what;
  const double err = (got - want).norm();
  EXPECT_TRUE(got.allFinite()) << what << ": non-finite output";
  EXPECT_LE(err, tol) << what << ": ||got - want||_F = " << err << ", ||want||_F = " << want.norm();
}

void expect_exactly_symmetric(const Mat& a, const std::string& what) {
  EXPECT_EQ(a, Mat(a.transpose())) << what << ": result is not exactly symmetric";
}

class BackendConformance : public testing::TestWithParam<BackendCase> {
 protected:
  void SetUp() override {
    if (GetParam().name == "cuda" && !cuda_available()) {
      GTEST_SKIP() << "no CUDA device visible (kwm::cuda_available() is false)";
    }
  }
  // Runs f(harness) with the harness of the case's precision.
  template <typename F>
  void run(F&& f) {
    if (GetParam().fp64) {
      Harness<double> h(GetParam().name);
      f(h);
    } else {
      Harness<float> h(GetParam().name);
      f(h);
    }
  }
};

template <typename H>
using ScalarOf = typename std::decay_t<H>::Scalar;

std::string shape(Index r, Index c) { return std::to_string(r) + "x" + std::to_string(c); }

// Shapes for n x m operands: m = 1, non-square, n not a multiple of 32 (nor of 4), sizes that
// cross the CUDA downdate kernel's 64-wide (m <= 32) and 128-wide (m > 32) tiles, and m >= 128
// (300 x 130), where the CUDA backend's downdate takes cuBLAS syr2k.
const std::vector<std::pair<Index, Index>> kTall = {{1, 1},     {5, 1},    {33, 7},   {64, 64},
                                                    {100, 3},   {129, 33}, {257, 40}, {260, 5},
                                                    {300, 130}, {600, 70}};
const std::vector<Index> kSquare = {1, 2, 5, 33, 64, 100, 257};

TEST_P(BackendConformance, AllocateGivesZeroFilledTensorsOfTheRequestedShape) {
  run([](auto& h) {
    for (const auto& [r, c] : kTall) {
      auto t = h.backend->allocate(r, c);
      EXPECT_EQ(t.rows(), r);
      EXPECT_EQ(t.cols(), c);
      EXPECT_EQ(t.space(), h.backend->space());
      EXPECT_EQ(h.get(t), Mat::Zero(r, c)) << shape(r, c);
    }
    auto empty = h.backend->allocate(0, 3);
    EXPECT_EQ(empty.size(), 0);
  });
}

TEST_P(BackendConformance, UploadDownloadCopyAndFillAreExact) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    for (const auto& [r, c] : kTall) {
      const Mat x = h.random(r, c);
      auto t = h.put(x);
      EXPECT_EQ(h.get(t), x) << "round trip " << shape(r, c);
      auto y = h.backend->allocate(r, c);
      h.backend->copy(t, y);
      EXPECT_EQ(h.get(y), x) << "copy " << shape(r, c);
      h.backend->fill(y, T(0.375));
      EXPECT_EQ(h.get(y), Mat::Constant(r, c, 0.375)) << "fill " << shape(r, c);
    }
  });
}

TEST_P(BackendConformance, GemmMatchesReferenceForEveryTransposeCombination) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    // (rows of C, inner k, cols of C)
    const std::vector<std::array<Index, 3>> shapes = {{1, 1, 1},     {1, 17, 5},     {33, 1, 40},
                                                      {100, 37, 65}, {257, 129, 33}, {64, 300, 64}};
    const double alpha = Harness<T>::round(0.7);
    for (const auto& [r, k, c] : shapes) {
      for (Op op_a : {Op::none, Op::transpose}) {
        for (Op op_b : {Op::none, Op::transpose}) {
          for (double beta : {0.0, -1.25}) {
            const Mat a = op_a == Op::none ? h.random(r, k) : h.random(k, r);
            const Mat b = op_b == Op::none ? h.random(k, c) : h.random(c, k);
            const Mat c0 = h.random(r, c);
            auto ta = h.put(a), tb = h.put(b), tc = h.put(c0);
            h.backend->gemm(op_a, op_b, static_cast<T>(alpha), ta, tb, static_cast<T>(beta), tc);
            auto ra = h.put_ref(a), rb = h.put_ref(b), rc = h.put_ref(c0);
            h.ref->gemm(op_a, op_b, alpha, ra, rb, beta, rc);
            // Each entry is a length-k sum: error <= (k + 2) eps (|alpha| |A||B| + |beta| |C|).
            const double tol = 2.0 * static_cast<double>(k + 2) * Harness<T>::eps *
                               (std::abs(alpha) * a.norm() * b.norm() + std::abs(beta) * c0.norm());
            expect_close(h.get(tc), h.get_ref(rc), tol,
                         "gemm " + shape(r, k) + "*" + shape(k, c) + " ops " +
                             std::to_string(static_cast<int>(op_a)) +
                             std::to_string(static_cast<int>(op_b)) + " beta " +
                             std::to_string(beta));
          }
        }
      }
    }
  });
}

TEST_P(BackendConformance, SyrkIsSymmetricAndMatchesReference) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    for (const auto& [n, k] : kTall) {
      for (Op op : {Op::none, Op::transpose}) {
        const Mat a = op == Op::none ? h.random(n, k) : h.random(k, n);
        const Mat c0 = h.symmetric(n);
        const double alpha = Harness<T>::round(-0.6), beta = 0.5;
        auto ta = h.put(a), tc = h.put(c0);
        h.backend->syrk(op, static_cast<T>(alpha), ta, static_cast<T>(beta), tc);
        auto ra = h.put_ref(a), rc = h.put_ref(c0);
        h.ref->syrk(op, alpha, ra, beta, rc);
        const Mat got = h.get(tc);
        expect_exactly_symmetric(got, "syrk " + shape(n, k));
        const double tol = 2.0 * static_cast<double>(k + 2) * Harness<T>::eps *
                           (std::abs(alpha) * a.squaredNorm() + beta * c0.norm());
        expect_close(got, h.get_ref(rc), tol, "syrk " + shape(n, k));
      }
    }
  });
}

TEST_P(BackendConformance, ElementwiseKernelsMatchReference) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    const double eps = Harness<T>::eps;
    for (const auto& [r, c] : kTall) {
      const std::string at = " " + shape(r, c);
      const Mat x = h.random(r, c), y = h.random(r, c), d = h.random(r, 1);
      const double alpha = Harness<T>::round(-1.7);
      {  // axpy: one rounding per entry of alpha x and one of the sum.
        auto tx = h.put(x), ty = h.put(y);
        h.backend->axpy(static_cast<T>(alpha), tx, ty);
        expect_close(h.get(ty), y + alpha * x, 2 * eps * (std::abs(alpha) * x.norm() + y.norm()),
                     "axpy" + at);
      }
      {  // scale
        auto tx = h.put(x);
        h.backend->scale(static_cast<T>(alpha), tx);
        expect_close(h.get(tx), alpha * x, eps * std::abs(alpha) * x.norm(), "scale" + at);
      }
      {  // scale_rows
        auto td = h.put(d), tx = h.put(x);
        h.backend->scale_rows(td, tx);
        expect_close(h.get(tx), d.asDiagonal() * x, eps * d.cwiseAbs().maxCoeff() * x.norm(),
                     "scale_rows" + at);
      }
      {  // dot: a length r*c sum.
        auto tx = h.put(x), ty = h.put(y);
        const double got = static_cast<double>(h.backend->dot(tx, ty));
        const double want = x.cwiseProduct(y).sum();
        EXPECT_NEAR(got, want, 2.0 * static_cast<double>(r * c + 2) * eps * x.norm() * y.norm())
            << "dot" << at;
      }
      {  // all_finite, then a NaN and an Inf planted in the last entry
        EXPECT_TRUE(h.backend->all_finite(h.put(x))) << "all_finite" << at;
        Mat bad = x;
        bad(r - 1, c - 1) = std::numeric_limits<double>::quiet_NaN();
        EXPECT_FALSE(h.backend->all_finite(h.put(bad))) << "all_finite NaN" << at;
        bad(r - 1, c - 1) = -std::numeric_limits<double>::infinity();
        EXPECT_FALSE(h.backend->all_finite(h.put(bad))) << "all_finite Inf" << at;
      }
    }
  });
}

TEST_P(BackendConformance, DiagonalAndSymmetricKernelsMatchReference) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    const double eps = Harness<T>::eps;
    for (Index n : kSquare) {
      const std::string at = " n=" + std::to_string(n);
      const Mat a = h.random(n, n), d = h.random(n, 1);
      const double alpha = Harness<T>::round(2.5);
      {
        auto ta = h.put(a);
        h.backend->add_identity(static_cast<T>(alpha), ta);
        expect_close(h.get(ta), a + alpha * Mat::Identity(n, n), 2 * eps * (a.norm() + alpha * n),
                     "add_identity" + at);
      }
      {
        auto ta = h.put(a), td = h.put(d);
        h.backend->add_diagonal(td, ta);
        Mat want = a;
        want.diagonal() += d;
        expect_close(h.get(ta), want, 2 * eps * (a.norm() + d.norm()), "add_diagonal" + at);
      }
      {
        auto ta = h.put(a), td = h.backend->allocate(n, 1);
        h.backend->diagonal(ta, td);
        EXPECT_EQ(h.get(td), Mat(a.diagonal())) << "diagonal" << at;
      }
      {  // trace: a length-n sum.
        const double got = static_cast<double>(h.backend->trace(h.put(a)));
        EXPECT_NEAR(got, a.trace(),
                    2.0 * static_cast<double>(n + 2) * eps * a.diagonal().cwiseAbs().sum())
            << "trace" << at;
      }
      {  // symmetrize: one addition and one exact halving per entry; exactly symmetric.
        auto ta = h.put(a);
        h.backend->symmetrize(ta);
        const Mat got = h.get(ta);
        expect_exactly_symmetric(got, "symmetrize" + at);
        expect_close(got, 0.5 * (a + a.transpose()), eps * a.norm(), "symmetrize" + at);
      }
    }
  });
}

TEST_P(BackendConformance, RiccatiDowndateIsSymmetricDeterministicAndMatchesReference) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    for (const auto& [n, m] : kTall) {
      const std::string at = " n=" + std::to_string(n) + " m=" + std::to_string(m);
      const Mat p = h.spd(n), k = h.random(n, m), u = h.random(n, m);
      auto tp = h.put(p), tk = h.put(k), tu = h.put(u);
      h.backend->riccati_downdate(tp, tk, tu);
      auto rp = h.put_ref(p), rk = h.put_ref(k), ru = h.put_ref(u);
      h.ref->riccati_downdate(rp, rk, ru);
      const Mat got = h.get(tp);
      expect_exactly_symmetric(got, "riccati_downdate" + at);
      // Each entry is P_ij minus a length-2m sum.
      const double tol =
          2.0 * static_cast<double>(2 * m + 2) * Harness<T>::eps * (p.norm() + k.norm() * u.norm());
      expect_close(got, h.get_ref(rp), tol, "riccati_downdate" + at);
      // Run twice on the same inputs: bit-identical (no atomics, no races).
      auto tp2 = h.put(p);
      h.backend->riccati_downdate(tp2, tk, tu);
      EXPECT_EQ(h.get(tp2), got) << "riccati_downdate not deterministic" << at;
    }
  });
}

TEST_P(BackendConformance, DiagonalDowndateMatchesReference) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    for (const auto& [n, m] : kTall) {
      const Mat p = h.random(n, 1), k = h.random(n, m), u = h.random(n, m);
      auto tp = h.put(p), tk = h.put(k), tu = h.put(u);
      h.backend->diagonal_downdate(tp, tk, tu);
      const Mat want = p - k.cwiseProduct(u).rowwise().sum();
      const double tol =
          2.0 * static_cast<double>(m + 2) * Harness<T>::eps * (p.norm() + k.norm() * u.norm());
      expect_close(h.get(tp), want, tol, "diagonal_downdate " + shape(n, m));
    }
  });
}

TEST_P(BackendConformance, CholeskyAndSolvesMatchReference) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    const double eps = Harness<T>::eps;
    for (Index n : kSquare) {
      const std::string at = " n=" + std::to_string(n);
      const Mat a = h.spd(n);
      auto tl = h.put(a);
      ASSERT_TRUE(h.backend->cholesky(tl)) << "cholesky" << at;
      auto rl = h.put_ref(a);
      ASSERT_TRUE(h.ref->cholesky(rl));
      const Mat l = h.get(tl), lref = h.get_ref(rl);
      EXPECT_EQ(Mat(l.triangularView<Eigen::StrictlyUpper>()), Mat::Zero(n, n))
          << "cholesky: strict upper triangle must be zero" << at;
      // cond(A) <= ~2.4 (see spd()), so the factor's forward error is a small multiple of n eps.
      expect_close(l, lref, 10.0 * static_cast<double>(n + 2) * eps * lref.norm(), "cholesky" + at);

      for (Index r : {Index{1}, Index{7}, n + 3}) {
        const Mat b = h.random(n, r);
        auto tb = h.put(b);
        h.backend->cholesky_solve(tl, tb);
        auto rb = h.put_ref(b);
        h.ref->cholesky_solve(rl, rb);
        const Mat x = h.get_ref(rb);
        expect_close(h.get(tb), x, 20.0 * static_cast<double>(n + 2) * eps * x.norm(),
                     "cholesky_solve " + shape(n, r));

        const Mat bt = h.random(r, n);
        auto tbt = h.put(bt);
        h.backend->cholesky_solve_right(tl, tbt);
        auto rbt = h.put_ref(bt);
        h.ref->cholesky_solve_right(rl, rbt);
        const Mat xt = h.get_ref(rbt);
        expect_close(h.get(tbt), xt, 20.0 * static_cast<double>(n + 2) * eps * xt.norm(),
                     "cholesky_solve_right " + shape(r, n));
      }
    }
  });
}

TEST_P(BackendConformance, CholeskyReportsMatricesThatAreNotPositiveDefinite) {
  run([](auto& h) {
    for (Index n : {Index{1}, Index{2}, Index{33}, Index{100}}) {
      Mat a = h.spd(n);
      a(n - 1, n - 1) = -1.0;  // the last leading minor is negative
      auto ta = h.put(a);
      EXPECT_FALSE(h.backend->cholesky(ta)) << "negative diagonal, n=" << n;
    }
    Mat indefinite(2, 2);
    indefinite << 1.0, 2.0, 2.0, 1.0;  // eigenvalues 3 and -1
    auto ti = h.put(indefinite);
    EXPECT_FALSE(h.backend->cholesky(ti)) << "indefinite 2x2";
  });
}

TEST_P(BackendConformance, EigenvaluesAndClampingMatchReference) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    const double eps = Harness<T>::eps;
    for (Index n : kSquare) {
      const std::string at = " n=" + std::to_string(n);
      const Mat a = h.symmetric(n);
      auto ta = h.put(a), tw = h.backend->allocate(n, 1);
      h.backend->symmetric_eigenvalues(ta, tw);
      auto ra = h.put_ref(a), rw = h.ref->allocate(n, 1);
      h.ref->symmetric_eigenvalues(ra, rw);
      const Mat w = h.get_ref(rw);
      // Backward-stable eigensolvers: |w - w_ref| <= c n eps ||A||; ascending order.
      const double tol = 10.0 * static_cast<double>(n + 2) * eps * a.norm();
      expect_close(h.get(tw), w, tol, "symmetric_eigenvalues" + at);

      // Bounds halfway between reference eigenvalues, so the count moved is unambiguous.
      double lo = w(0) - 1.0, hi = w(n - 1) + 1.0;
      Index expect_moved = 0;
      if (n >= 6) {
        lo = 0.5 * (w(1) + w(2));
        hi = 0.5 * (w(n - 3) + w(n - 2));
        expect_moved = 4;
      } else if (n >= 2) {
        lo = 0.5 * (w(0) + w(1));
        expect_moved = 1;
      }
      auto tc = h.put(a);
      const Index moved = h.backend->clamp_eigenvalues(tc, static_cast<T>(lo), static_cast<T>(hi));
      auto rc = h.put_ref(a);
      const Index moved_ref = h.ref->clamp_eigenvalues(rc, lo, hi);
      EXPECT_EQ(moved_ref, expect_moved) << at;
      EXPECT_EQ(moved, expect_moved) << "clamp_eigenvalues" << at;
      const Mat got = h.get(tc);
      expect_exactly_symmetric(got, "clamp_eigenvalues" + at);
      expect_close(got, h.get_ref(rc), 10.0 * tol, "clamp_eigenvalues" + at);

      // Bounds that move nothing leave A as it was.
      auto tu = h.put(a);
      EXPECT_EQ(h.backend->clamp_eigenvalues(tu, static_cast<T>(w(0) - 1.0),
                                             static_cast<T>(w(n - 1) + 1.0)),
                0)
          << at;
      expect_close(h.get(tu), a, tol, "clamp_eigenvalues (nothing moved)" + at);
    }
  });
}

TEST_P(BackendConformance, MismatchedShapesThrowShapeError) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    auto& b = *h.backend;
    auto a23 = b.allocate(2, 3), a33 = b.allocate(3, 3), a44 = b.allocate(4, 4);
    auto a32 = b.allocate(3, 2), a42 = b.allocate(4, 2), a43 = b.allocate(4, 3);
    auto v3 = b.allocate(3, 1), v4 = b.allocate(4, 1);
    const T one = T(1);
    EXPECT_THROW(b.gemm(Op::none, Op::none, one, a23, a23, T(0), a33), ShapeError);
    EXPECT_THROW(b.gemm(Op::transpose, Op::none, one, a23, a23, T(0), a23), ShapeError);
    EXPECT_THROW(b.syrk(Op::none, one, a23, T(0), a33), ShapeError);
    EXPECT_THROW(b.axpy(one, v3, v4), ShapeError);
    EXPECT_THROW(b.dot(v3, v4), ShapeError);
    EXPECT_THROW(b.scale_rows(v4, a32), ShapeError);
    EXPECT_THROW(b.add_identity(one, a23), ShapeError);
    EXPECT_THROW(b.add_diagonal(v4, a33), ShapeError);
    EXPECT_THROW(b.symmetrize(a23), ShapeError);
    EXPECT_THROW(b.trace(a23), ShapeError);
    EXPECT_THROW(b.diagonal(a33, v4), ShapeError);
    EXPECT_THROW(b.riccati_downdate(a33, a42, a42), ShapeError);
    EXPECT_THROW(b.riccati_downdate(a44, a42, a43), ShapeError);
    EXPECT_THROW(b.riccati_downdate(a23, a23, a23), ShapeError);
    EXPECT_THROW(b.diagonal_downdate(v3, a42, a42), ShapeError);
    EXPECT_THROW(b.cholesky(a23), ShapeError);
    EXPECT_THROW(b.cholesky_solve(a33, a42), ShapeError);
    EXPECT_THROW(b.cholesky_solve_right(a33, a42), ShapeError);
    EXPECT_THROW(b.symmetric_eigenvalues(a33, v4), ShapeError);
    EXPECT_THROW(b.clamp_eigenvalues(a23, T(0), T(1)), ShapeError);
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendConformance,
                         testing::Values(BackendCase{"cpu", true}, BackendCase{"cpu", false},
                                         BackendCase{"cuda", false}, BackendCase{"cuda", true}),
                         case_name);

}  // namespace
}  // namespace kwm
