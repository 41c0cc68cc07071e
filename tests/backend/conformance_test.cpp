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

// ---- batched operations ------------------------------------------------------------------------
// Each is checked against the CPU fp64 reference running the same batched call (the loop over the
// single operation), with the single operation's tolerance per entry; repeated outputs must be
// updated in entry order, and shared inputs may repeat.

// Pointer lists over owned tensors.
template <typename T>
ConstTensors<T> const_list(std::vector<Tensor<T>>& ts) {
  ConstTensors<T> list;
  for (auto& t : ts) list.push_back(&t);
  return list;
}
template <typename T>
Tensors<T> list(std::vector<Tensor<T>>& ts) {
  Tensors<T> out;
  for (auto& t : ts) out.push_back(&t);
  return out;
}

TEST_P(BackendConformance, GemmBatchedMatchesReferenceWithMixedShapesAndRepeats) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    // (rows of C, inner k, cols of C): equal shapes share a launch, others get their own.
    const std::vector<std::array<Index, 3>> shapes = {{33, 17, 5}, {100, 64, 8}, {33, 17, 5},
                                                      {1, 1, 1},   {100, 64, 8}, {257, 129, 33},
                                                      {33, 17, 5}};
    const double alpha = Harness<T>::round(0.7);
    for (Op op_a : {Op::none, Op::transpose}) {
      for (Op op_b : {Op::none, Op::transpose}) {
        for (double beta : {0.0, -1.25}) {
          std::vector<Mat> as, bs, cs;
          for (const auto& [r, k, c] : shapes) {
            as.push_back(op_a == Op::none ? h.random(r, k) : h.random(k, r));
            bs.push_back(op_b == Op::none ? h.random(k, c) : h.random(c, k));
            cs.push_back(h.random(r, c));
          }
          std::vector<Tensor<T>> ta, tb, tc;
          std::vector<Tensor<double>> ra, rb, rc;
          for (std::size_t i = 0; i < shapes.size(); ++i) {
            ta.push_back(h.put(as[i]));
            tb.push_back(h.put(bs[i]));
            tc.push_back(h.put(cs[i]));
            ra.push_back(h.put_ref(as[i]));
            rb.push_back(h.put_ref(bs[i]));
            rc.push_back(h.put_ref(cs[i]));
          }
          h.backend->gemm_batched(op_a, op_b, static_cast<T>(alpha), const_list(ta), const_list(tb),
                                  static_cast<T>(beta), list(tc));
          h.ref->gemm_batched(op_a, op_b, alpha, const_list(ra), const_list(rb), beta, list(rc));
          for (std::size_t i = 0; i < shapes.size(); ++i) {
            const Index k = shapes[i][1];
            const double tol =
                2.0 * static_cast<double>(k + 2) * Harness<T>::eps *
                (std::abs(alpha) * as[i].norm() * bs[i].norm() + std::abs(beta) * cs[i].norm());
            expect_close(h.get(tc[i]), h.get_ref(rc[i]), tol,
                         "gemm_batched entry " + std::to_string(i) + " ops " +
                             std::to_string(static_cast<int>(op_a)) +
                             std::to_string(static_cast<int>(op_b)) + " beta " +
                             std::to_string(beta));
          }
        }
      }
    }
    // A shared input (one B for every entry) and a repeated output (C twice: two accumulations,
    // in order), as the DEKF's mean update m_b += K_b e uses them.
    const Mat e = h.random(8, 1), c0 = h.random(40, 1);
    std::vector<Mat> ks = {h.random(40, 8), h.random(40, 8), h.random(40, 8)};
    auto te = h.put(e);
    auto tc0 = h.put(c0), tc1 = h.put(c0);
    auto re = h.put_ref(e);
    auto rc0 = h.put_ref(c0), rc1 = h.put_ref(c0);
    std::vector<Tensor<T>> tk;
    std::vector<Tensor<double>> rk;
    for (const Mat& k : ks) {
      tk.push_back(h.put(k));
      rk.push_back(h.put_ref(k));
    }
    h.backend->gemm_batched(Op::none, Op::none, T(1), const_list(tk), ConstTensors<T>(3, &te), T(1),
                            Tensors<T>{&tc0, &tc1, &tc0});
    h.ref->gemm_batched(Op::none, Op::none, 1.0, const_list(rk), ConstTensors<double>(3, &re), 1.0,
                        Tensors<double>{&rc0, &rc1, &rc0});
    const double tol = 2.0 * 12.0 * Harness<T>::eps * (3.0 * ks[0].norm() * e.norm() + c0.norm());
    expect_close(h.get(tc0), h.get_ref(rc0), tol, "gemm_batched repeated output");
    expect_close(h.get(tc1), h.get_ref(rc1), tol, "gemm_batched shared input");
    // More entries than one launch takes (1024 on CUDA): 1100 small products.
    std::vector<Tensor<T>> many_a, many_c;
    std::vector<Tensor<double>> many_ra, many_rc;
    const Mat small_b = h.random(3, 2);
    auto tsb = h.put(small_b);
    auto rsb = h.put_ref(small_b);
    for (int i = 0; i < 1100; ++i) {
      const Mat a = h.random(2, 3);
      many_a.push_back(h.put(a));
      many_ra.push_back(h.put_ref(a));
      many_c.push_back(h.backend->allocate(2, 2));
      many_rc.push_back(h.ref->allocate(2, 2));
    }
    h.backend->gemm_batched(Op::none, Op::none, T(1), const_list(many_a),
                            ConstTensors<T>(1100, &tsb), T(0), list(many_c));
    h.ref->gemm_batched(Op::none, Op::none, 1.0, const_list(many_ra),
                        ConstTensors<double>(1100, &rsb), 0.0, list(many_rc));
    for (std::size_t i = 0; i < many_c.size(); i += 109) {
      expect_close(h.get(many_c[i]), h.get_ref(many_rc[i]), 20.0 * Harness<T>::eps * 6.0,
                   "gemm_batched entry " + std::to_string(i) + " of 1100");
    }
    expect_close(h.get(many_c.back()), h.get_ref(many_rc.back()), 20.0 * Harness<T>::eps * 6.0,
                 "gemm_batched last of 1100");
  });
}

TEST_P(BackendConformance, GemmSumMatchesReference) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    const Index m = 8;
    // Inner dimensions of the terms H_b U_b: equal ones share a launch, 0 adds nothing.
    const std::vector<Index> inner = {1024, 33, 1024, 0, 5, 1024, 257};
    const double alpha = Harness<T>::round(0.9);
    for (double beta : {0.0, 0.5}) {
      std::vector<Mat> hs, us;
      std::vector<Tensor<T>> th, tu;
      std::vector<Tensor<double>> rh, ru;
      double bound = 0.0;
      Index total = 0;
      for (Index k : inner) {
        hs.push_back(h.random(m, k));
        us.push_back(h.random(k, m));
        th.push_back(h.put(hs.back()));
        tu.push_back(h.put(us.back()));
        rh.push_back(h.put_ref(hs.back()));
        ru.push_back(h.put_ref(us.back()));
        bound += hs.back().norm() * us.back().norm();
        total += k + 2;
      }
      // beta = 0 must not read C: NaN there must not survive.
      Mat c0 = h.random(m, m);
      if (beta == 0.0) c0(3, 4) = std::numeric_limits<double>::quiet_NaN();
      auto tc = h.put(c0);
      auto rc = h.put_ref(c0);
      h.backend->gemm_sum(Op::none, Op::none, static_cast<T>(alpha), const_list(th), const_list(tu),
                          static_cast<T>(beta), tc);
      h.ref->gemm_sum(Op::none, Op::none, alpha, const_list(rh), const_list(ru), beta, rc);
      const double tol = 2.0 * static_cast<double>(total) * Harness<T>::eps *
                         (std::abs(alpha) * bound + (beta == 0.0 ? 0.0 : beta * c0.norm()));
      expect_close(h.get(tc), h.get_ref(rc), tol, "gemm_sum beta " + std::to_string(beta));
      Mat want = beta == 0.0 ? Mat::Zero(m, m) : Mat(beta * c0);
      for (std::size_t i = 0; i < hs.size(); ++i) want += alpha * hs[i] * us[i];
      expect_close(h.get_ref(rc), want, 1e-10 * (bound + (beta == 0.0 ? 0.0 : c0.norm())),
                   "gemm_sum reference");
    }
    // Transposed operands, and no terms at all: C <- beta C.
    const Mat a = h.random(6, 5), b = h.random(7, 6), c0 = h.random(5, 7);
    auto ta = h.put(a), tb = h.put(b), tc = h.put(c0);
    h.backend->gemm_sum(Op::transpose, Op::transpose, T(1), ConstTensors<T>{&ta, &ta},
                        ConstTensors<T>{&tb, &tb}, T(1), tc);
    const Mat want = c0 + 2.0 * a.transpose() * b.transpose();
    expect_close(h.get(tc), want, 40.0 * Harness<T>::eps * (2.0 * a.norm() * b.norm() + c0.norm()),
                 "gemm_sum transposed");
    auto tz = h.put(c0);
    h.backend->gemm_sum(Op::none, Op::none, T(1), {}, {}, T(-2), tz);
    EXPECT_EQ(h.get(tz), Mat(-2.0 * c0)) << "gemm_sum with no terms";
    h.backend->gemm_sum(Op::none, Op::none, T(1), {}, {}, T(0), tz);
    EXPECT_EQ(h.get(tz), Mat::Zero(5, 7)) << "gemm_sum with no terms, beta 0";
  });
}

TEST_P(BackendConformance, CholeskySolveRightBatchedMatchesReference) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    const double eps = Harness<T>::eps;
    for (Index n : {Index{1}, Index{8}, Index{33}, Index{64}}) {
      const Mat s = h.spd(n);
      auto tl = h.put(s);
      auto rl = h.put_ref(s);
      ASSERT_TRUE(h.backend->cholesky(tl));
      ASSERT_TRUE(h.ref->cholesky(rl));
      // Rows per entry: equal ones share a launch; the last entry is solved in place.
      const std::vector<Index> rows = {100, 5, 100, 1, 257, 100};
      std::vector<Mat> bs;
      std::vector<Tensor<T>> tb, tx;
      std::vector<Tensor<double>> rb, rx;
      for (Index r : rows) {
        bs.push_back(h.random(r, n));
        tb.push_back(h.put(bs.back()));
        rb.push_back(h.put_ref(bs.back()));
        tx.push_back(h.backend->allocate(r, n));
        rx.push_back(h.ref->allocate(r, n));
      }
      Tensors<T> outs = list(tx);
      Tensors<double> routs = list(rx);
      outs.back() = &tb.back();
      routs.back() = &rb.back();
      h.backend->cholesky_solve_right_batched(tl, const_list(tb), outs);
      h.ref->cholesky_solve_right_batched(rl, const_list(rb), routs);
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const Mat want = h.get_ref(*routs[i]);
        expect_close(
            h.get(*outs[i]), want, 20.0 * static_cast<double>(n + 2) * eps * want.norm(),
            "cholesky_solve_right_batched n=" + std::to_string(n) + " entry " + std::to_string(i));
        // And the reference itself solves X S = B.
        expect_close(want * s, bs[i], 1e-10 * bs[i].norm() * 4.0,
                     "reference X S = B, entry " + std::to_string(i));
      }
      // Inputs other than the in-place entry are left as they were.
      EXPECT_EQ(h.get(tb[0]), bs[0]) << "cholesky_solve_right_batched wrote its input";
    }
  });
}

TEST_P(BackendConformance, RiccatiDowndateBatchedEqualsTheSingleDowndateAndTheReference) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    // Equal shapes share a launch; (300, 130) takes the syr2k path on CUDA; entry 6 repeats
    // entry 0's P (downdated twice, in order).
    const std::vector<std::pair<Index, Index>> shapes = {{64, 8}, {33, 7},    {64, 8}, {129, 33},
                                                         {64, 8}, {300, 130}, {64, 8}, {1, 1}};
    std::vector<Mat> ps, ks, us;
    std::vector<Tensor<T>> tp, tk, tu, single;
    std::vector<Tensor<double>> rp, rk, ru;
    for (const auto& [n, m] : shapes) {
      ps.push_back(h.spd(n));
      ks.push_back(h.random(n, m));
      us.push_back(h.random(n, m));
      tp.push_back(h.put(ps.back()));
      tk.push_back(h.put(ks.back()));
      tu.push_back(h.put(us.back()));
      single.push_back(h.put(ps.back()));
      rp.push_back(h.put_ref(ps.back()));
      rk.push_back(h.put_ref(ks.back()));
      ru.push_back(h.put_ref(us.back()));
    }
    Tensors<T> p_list = list(tp);
    Tensors<double> rp_list = list(rp);
    Tensors<T> single_list = list(single);
    p_list[6] = &tp[0];
    rp_list[6] = &rp[0];
    single_list[6] = &single[0];
    h.backend->riccati_downdate_batched(p_list, const_list(tk), const_list(tu));
    h.ref->riccati_downdate_batched(rp_list, const_list(rk), const_list(ru));
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      h.backend->riccati_downdate(*single_list[i], tk[i], tu[i]);
    }
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      if (i == 6) continue;  // entry 6 is entry 0's P
      const auto [n, m] = shapes[i];
      const std::string at =
          " entry " + std::to_string(i) + " n=" + std::to_string(n) + " m=" + std::to_string(m);
      const Mat got = h.get(tp[i]);
      expect_exactly_symmetric(got, "riccati_downdate_batched" + at);
      // Entry 0 is downdated twice (its own K, U and entry 6's).
      double bound = ps[i].norm() + ks[i].norm() * us[i].norm();
      if (i == 0) bound += ks[6].norm() * us[6].norm();
      const double tol =
          2.0 * static_cast<double>(2 * m + 2) * Harness<T>::eps * bound * (i == 0 ? 2.0 : 1.0);
      expect_close(got, h.get_ref(rp[i]), tol, "riccati_downdate_batched" + at);
      // The batched launch runs the single downdate's arithmetic: bit for bit the same.
      EXPECT_EQ(got, h.get(single[i])) << "batched differs from single riccati_downdate" << at;
    }
    const Mat twice = ps[0] - 0.5 * (ks[0] * us[0].transpose() + us[0] * ks[0].transpose()) -
                      0.5 * (ks[6] * us[6].transpose() + us[6] * ks[6].transpose());
    expect_close(h.get_ref(rp[0]), twice, 1e-12 * twice.norm(), "repeated P downdated twice");
  });
}

TEST_P(BackendConformance, PoisonUnlessFiniteFlagsAnyNonFiniteEntryOfAnyTensor) {
  run([](auto& h) {
    // 70 tensors: more than one CUDA check launch takes (64), of mixed sizes, one empty.
    std::vector<Mat> xs;
    std::vector<Tensor<ScalarOf<decltype(h)>>> tx;
    for (int i = 0; i < 70; ++i) {
      xs.push_back(h.random(1 + (i * 37) % 300, 1 + i % 9));
      tx.push_back(h.put(xs.back()));
    }
    tx.push_back(h.backend->allocate(0, 4));
    const Mat target = h.random(8, 8);
    auto t = h.put(target);
    h.backend->poison_unless_finite(const_list(tx), t);
    EXPECT_EQ(h.get(t), target) << "all finite: target must be unchanged";
    h.backend->poison_unless_finite({}, t);
    EXPECT_EQ(h.get(t), target) << "nothing checked: target must be unchanged";
    for (int bad : {0, 63, 64, 69}) {
      for (double value :
           {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
        Mat poisoned = xs[static_cast<std::size_t>(bad)];
        poisoned(poisoned.rows() - 1, poisoned.cols() - 1) = value;
        auto saved = tx[static_cast<std::size_t>(bad)];
        tx[static_cast<std::size_t>(bad)] = h.put(poisoned);
        auto tt = h.put(target);
        h.backend->poison_unless_finite(const_list(tx), tt);
        const Mat got = h.get(tt);
        EXPECT_TRUE(got.array().isNaN().all())
            << "tensor " << bad << " holds " << value << ": every target entry must be NaN";
        tx[static_cast<std::size_t>(bad)] = saved;
      }
    }
    // The verdict is per call: a later all-finite call leaves its target alone.
    auto again = h.put(target);
    h.backend->poison_unless_finite(const_list(tx), again);
    EXPECT_EQ(h.get(again), target) << "a clean call after a poisoned one";
  });
}

TEST_P(BackendConformance, BatchedOperationsRejectMismatchedEntries) {
  run([](auto& h) {
    using T = ScalarOf<decltype(h)>;
    auto& b = *h.backend;
    auto a23 = b.allocate(2, 3), a33 = b.allocate(3, 3), a32 = b.allocate(3, 2);
    auto a22 = b.allocate(2, 2), a42 = b.allocate(4, 2), a44 = b.allocate(4, 4);
    const T one = T(1);
    // Entry 1 of 2 is wrong: nothing may run.
    EXPECT_THROW(
        b.gemm_batched(Op::none, Op::none, one, {&a23, &a23}, {&a32, &a23}, T(0), {&a22, &a22}),
        ShapeError);
    EXPECT_THROW(b.gemm_batched(Op::none, Op::none, one, {&a23}, {&a32, &a32}, T(0), {&a22}),
                 ShapeError);
    EXPECT_THROW(b.gemm_batched(Op::none, Op::none, one, {&a23}, {nullptr}, T(0), {&a22}),
                 ShapeError);
    EXPECT_THROW(b.gemm_sum(Op::none, Op::none, one, {&a23, &a22}, {&a32, &a32}, T(0), a22),
                 ShapeError);
    EXPECT_THROW(b.cholesky_solve_right_batched(a33, {&a23}, {&a22}), ShapeError);
    EXPECT_THROW(b.cholesky_solve_right_batched(a23, {&a23}, {&a23}), ShapeError);
    EXPECT_THROW(b.cholesky_solve_right_batched(a33, {&a32}, {&a32}), ShapeError);
    EXPECT_THROW(b.riccati_downdate_batched({&a44, &a33}, {&a42, &a42}, {&a42, &a42}), ShapeError);
    EXPECT_THROW(b.riccati_downdate_batched({&a44}, {&a42, &a42}, {&a42}), ShapeError);
    EXPECT_THROW(b.poison_unless_finite({&a23, nullptr}, a22), ShapeError);
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
