// Eigen implementation of Backend<T> for float and double (see backend.hpp for the contracts).
#include "core/backend/cpu/cpu_backend.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>

#include "core/backend/batch_shapes.hpp"
#include "core/backend/cpu/symmetric_tiles.hpp"

namespace kwm {
namespace {

template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <typename T>
using MapMat = Eigen::Map<Mat<T>>;
template <typename T>
using ConstMapMat = Eigen::Map<const Mat<T>>;

template <typename T>
MapMat<T> view(Tensor<T>& t) {
  return MapMat<T>(t.data(), t.rows(), t.cols());
}
template <typename T>
ConstMapMat<T> view(const Tensor<T>& t) {
  return ConstMapMat<T>(t.data(), t.rows(), t.cols());
}

std::string dims(Index r, Index c) { return std::to_string(r) + "x" + std::to_string(c); }

template <typename T>
void require(bool ok, const char* kernel, const std::string& what) {
  if (!ok) throw ShapeError(std::string("cpu backend ") + kernel + ": " + what);
}

template <typename T>
void require_square(const char* kernel, const Tensor<T>& a) {
  require<T>(a.is_square(), kernel, "expected a square matrix; got " + dims(a.rows(), a.cols()));
}

constexpr std::size_t kCacheLine = 64;

template <typename T>
class CpuBackend final : public Backend<T> {
 public:
  std::string name() const override { return "cpu"; }
  MemorySpace space() const override { return MemorySpace::host; }

  Tensor<T> allocate(Index rows, Index cols) override {
    require<T>(rows >= 0 && cols >= 0, "allocate", "negative size " + dims(rows, cols));
    // 64-byte (cache-line) aligned: the tiled mirror's streaming stores then cover whole lines
    // (glibc's large allocations sit 16 bytes past a page boundary).
    const auto count = std::max<std::size_t>(static_cast<std::size_t>(rows * cols), 1);
    const std::size_t bytes = (count * sizeof(T) + kCacheLine - 1) / kCacheLine * kCacheLine;
    T* raw = static_cast<T*>(std::aligned_alloc(kCacheLine, bytes));
    if (raw == nullptr) throw std::bad_alloc();
    std::memset(raw, 0, bytes);
    std::shared_ptr<T> storage(raw, [](T* p) { std::free(p); });
    return Tensor<T>(rows, cols, std::move(storage), MemorySpace::host);
  }

  void upload(const T* host, Tensor<T>& dst) override {
    std::memcpy(dst.data(), host, sizeof(T) * static_cast<std::size_t>(dst.size()));
  }
  void download(const Tensor<T>& src, T* host) override {
    std::memcpy(host, src.data(), sizeof(T) * static_cast<std::size_t>(src.size()));
  }
  void copy(const Tensor<T>& src, Tensor<T>& dst) override {
    same_size("copy", src, dst);
    std::memcpy(dst.data(), src.data(), sizeof(T) * static_cast<std::size_t>(src.size()));
  }
  void fill(Tensor<T>& x, T value) override { view(x).setConstant(value); }
  void synchronize() override {}

  void gemm(Op op_a, Op op_b, T alpha, const Tensor<T>& a, const Tensor<T>& b, T beta,
            Tensor<T>& c) override {
    const Index m = op_a == Op::none ? a.rows() : a.cols();
    const Index k = op_a == Op::none ? a.cols() : a.rows();
    const Index kb = op_b == Op::none ? b.rows() : b.cols();
    const Index n = op_b == Op::none ? b.cols() : b.rows();
    require<T>(k == kb && c.rows() == m && c.cols() == n, "gemm",
               "op(A) is " + dims(m, k) + ", op(B) is " + dims(kb, n) + ", C is " +
                   dims(c.rows(), c.cols()));
    auto C = view(c);
    if (beta == T(0)) {
      C.setZero();
    } else if (beta != T(1)) {
      C *= beta;
    }
    if (m == 0 || n == 0 || k == 0) return;
    const auto A = view(a);
    const auto B = view(b);
    if (op_a == Op::none && op_b == Op::none) C.noalias() += alpha * A * B;
    if (op_a == Op::none && op_b == Op::transpose) C.noalias() += alpha * A * B.transpose();
    if (op_a == Op::transpose && op_b == Op::none) C.noalias() += alpha * A.transpose() * B;
    if (op_a == Op::transpose && op_b == Op::transpose)
      C.noalias() += alpha * A.transpose() * B.transpose();
  }

  void syrk(Op op, T alpha, const Tensor<T>& a, T beta, Tensor<T>& c) override {
    const Index n = op == Op::none ? a.rows() : a.cols();
    require<T>(c.rows() == n && c.cols() == n, "syrk",
               "A is " + dims(a.rows(), a.cols()) + ", C must be " + dims(n, n) + "; got " +
                   dims(c.rows(), c.cols()));
    auto C = view(c);
    const auto A = view(a);
    // The product goes straight into C's lower triangle (beta = 0 never reads C, as in BLAS),
    // which the tiled mirror then copies onto the upper one.
    if (beta == T(0)) {
      C.template triangularView<Eigen::Lower>().setZero();
    } else if (beta != T(1)) {
      C.template triangularView<Eigen::Lower>() *= beta;
    }
    if (op == Op::none) {
      C.template selfadjointView<Eigen::Lower>().rankUpdate(A, alpha);
    } else {
      C.template selfadjointView<Eigen::Lower>().rankUpdate(A.transpose(), alpha);
    }
    cpu::mirror_lower_to_upper(c.data(), n);
  }

  void axpy(T alpha, const Tensor<T>& x, Tensor<T>& y) override {
    same_size("axpy", x, y);
    auto Y = MapMat<T>(y.data(), y.size(), 1);
    Y += alpha * ConstMapMat<T>(x.data(), x.size(), 1);
  }
  void scale(T alpha, Tensor<T>& x) override { view(x) *= alpha; }

  void scale_rows(const Tensor<T>& d, Tensor<T>& a) override {
    require<T>(d.size() == a.rows(), "scale_rows",
               "d has " + std::to_string(d.size()) + " entries, A has " + std::to_string(a.rows()) +
                   " rows");
    view(a) = ConstMapMat<T>(d.data(), d.size(), 1).asDiagonal() * view(a);
  }

  T dot(const Tensor<T>& x, const Tensor<T>& y) override {
    same_size("dot", x, y);
    return ConstMapMat<T>(x.data(), x.size(), 1)
        .col(0)
        .dot(ConstMapMat<T>(y.data(), y.size(), 1).col(0));
  }

  void add_identity(T alpha, Tensor<T>& a) override {
    require_square("add_identity", a);
    view(a).diagonal().array() += alpha;
  }
  void add_diagonal(const Tensor<T>& d, Tensor<T>& a) override {
    require_square("add_diagonal", a);
    require<T>(d.size() == a.rows(), "add_diagonal",
               "d has " + std::to_string(d.size()) + " entries for a " + dims(a.rows(), a.cols()) +
                   " matrix");
    view(a).diagonal() += ConstMapMat<T>(d.data(), d.size(), 1).col(0);
  }
  void symmetrize(Tensor<T>& a) override {
    require_square("symmetrize", a);
    cpu::symmetrize_tiled(a.data(), a.rows());
  }
  T trace(const Tensor<T>& a) override {
    require_square("trace", a);
    return view(a).trace();
  }
  void diagonal(const Tensor<T>& a, Tensor<T>& d) override {
    require_square("diagonal", a);
    require<T>(d.size() == a.rows(), "diagonal",
               "d must have " + std::to_string(a.rows()) + " entries");
    MapMat<T>(d.data(), d.size(), 1).col(0) = view(a).diagonal();
  }

  void riccati_downdate(Tensor<T>& p, const Tensor<T>& k, const Tensor<T>& u) override {
    require_square("riccati_downdate", p);
    require<T>(k.rows() == p.rows() && u.rows() == p.rows() && k.cols() == u.cols(),
               "riccati_downdate",
               "P is " + dims(p.rows(), p.cols()) + ", K is " + dims(k.rows(), k.cols()) +
                   ", U is " + dims(u.rows(), u.cols()));
    // Fused single pass for small m, triangular GEMM above; exactly symmetric either way.
    cpu::riccati_downdate_tiled(p.data(), p.rows(), k.data(), u.data(), k.cols());
  }

  void diagonal_downdate(Tensor<T>& p, const Tensor<T>& k, const Tensor<T>& u) override {
    require<T>(
        p.cols() == 1 && k.rows() == p.rows() && u.rows() == p.rows() && k.cols() == u.cols(),
        "diagonal_downdate",
        "p is " + dims(p.rows(), p.cols()) + ", K is " + dims(k.rows(), k.cols()) + ", U is " +
            dims(u.rows(), u.cols()));
    view(p).col(0) -= view(k).cwiseProduct(view(u)).rowwise().sum();
  }

  bool cholesky(Tensor<T>& a) override {
    require_square("cholesky", a);
    auto A = view(a);
    Eigen::LLT<Eigen::Ref<Mat<T>>> llt(A);  // in place: the factor overwrites A's lower part
    if (llt.info() != Eigen::Success) return false;
    A.template triangularView<Eigen::StrictlyUpper>().setZero();
    return true;
  }

  void cholesky_solve(const Tensor<T>& l, Tensor<T>& b) override {
    require_square("cholesky_solve", l);
    require<T>(b.rows() == l.rows(), "cholesky_solve",
               "L is " + dims(l.rows(), l.cols()) + ", B is " + dims(b.rows(), b.cols()));
    const auto L = view(l).template triangularView<Eigen::Lower>();
    auto B = view(b);
    L.solveInPlace(B);
    L.transpose().solveInPlace(B);
  }

  void cholesky_solve_right(const Tensor<T>& l, Tensor<T>& b) override {
    require_square("cholesky_solve_right", l);
    require<T>(b.cols() == l.rows(), "cholesky_solve_right",
               "L is " + dims(l.rows(), l.cols()) + ", B is " + dims(b.rows(), b.cols()));
    const auto L = view(l).template triangularView<Eigen::Lower>();
    auto B = view(b);
    // B S^-1 = B L^-T L^-1: solve X L^T = B, then Y L = X.
    L.transpose().template solveInPlace<Eigen::OnTheRight>(B);
    L.template solveInPlace<Eigen::OnTheRight>(B);
  }

  void symmetric_eigenvalues(const Tensor<T>& a, Tensor<T>& w) override {
    require_square("symmetric_eigenvalues", a);
    require<T>(w.size() == a.rows(), "symmetric_eigenvalues",
               "w must have " + std::to_string(a.rows()) + " entries");
    Eigen::SelfAdjointEigenSolver<Mat<T>> solver(view(a), Eigen::EigenvaluesOnly);
    MapMat<T>(w.data(), w.size(), 1).col(0) = solver.eigenvalues();
  }

  Index clamp_eigenvalues(Tensor<T>& a, T floor, T ceiling) override {
    require_square("clamp_eigenvalues", a);
    require<T>(floor <= ceiling, "clamp_eigenvalues", "floor must not exceed ceiling");
    auto A = view(a);
    Eigen::SelfAdjointEigenSolver<Mat<T>> solver(A);
    auto w = solver.eigenvalues();
    Index moved = 0;
    for (Index i = 0; i < w.size(); ++i) {
      const T clamped = std::clamp(w(i), floor, ceiling);
      if (clamped != w(i)) ++moved;
      w(i) = clamped;
    }
    if (moved > 0) {
      const auto& V = solver.eigenvectors();
      A.noalias() = V * w.asDiagonal() * V.transpose();
      symmetrize(a);
    }
    return moved;
  }

  // The batched operations are the loops over the single ones, so fp64 CPU results are those of
  // the per-block code to the bit.
  void gemm_batched(Op op_a, Op op_b, T alpha, const ConstTensors<T>& a, const ConstTensors<T>& b,
                    T beta, const Tensors<T>& c) override {
    batch::check_gemm("cpu backend gemm_batched", op_a, op_b, a, b, c);
    for (std::size_t i = 0; i < a.size(); ++i) gemm(op_a, op_b, alpha, *a[i], *b[i], beta, *c[i]);
  }

  void gemm_sum(Op op_a, Op op_b, T alpha, const ConstTensors<T>& a, const ConstTensors<T>& b,
                T beta, Tensor<T>& c) override {
    batch::check_gemm_sum("cpu backend gemm_sum", op_a, op_b, a, b, c);
    if (a.empty()) {
      if (beta == T(0)) {
        view(c).setZero();
      } else {
        view(c) *= beta;
      }
      return;
    }
    // beta once, then every further term accumulated with beta = 1.
    gemm(op_a, op_b, alpha, *a[0], *b[0], beta, c);
    for (std::size_t i = 1; i < a.size(); ++i) gemm(op_a, op_b, alpha, *a[i], *b[i], T(1), c);
  }

  void cholesky_solve_right_batched(const Tensor<T>& l, const ConstTensors<T>& b,
                                    const Tensors<T>& x) override {
    batch::check_solve_right("cpu backend cholesky_solve_right_batched", l, b, x);
    for (std::size_t i = 0; i < b.size(); ++i) {
      if (x[i]->data() != b[i]->data()) copy(*b[i], *x[i]);
      cholesky_solve_right(l, *x[i]);
    }
  }

  void riccati_downdate_batched(const Tensors<T>& p, const ConstTensors<T>& k,
                                const ConstTensors<T>& u) override {
    batch::check_downdate("cpu backend riccati_downdate_batched", p, k, u);
    for (std::size_t i = 0; i < p.size(); ++i) riccati_downdate(*p[i], *k[i], *u[i]);
  }

  bool all_finite(const Tensor<T>& x) override { return view(x).allFinite(); }

  void poison_unless_finite(const ConstTensors<T>& checked, Tensor<T>& target) override {
    batch::check_list("cpu backend poison_unless_finite", checked);
    for (const Tensor<T>* x : checked) {
      if (!all_finite(*x)) {
        fill(target, std::numeric_limits<T>::quiet_NaN());
        return;
      }
    }
  }

 private:
  static void same_size(const char* kernel, const Tensor<T>& x, const Tensor<T>& y) {
    require<T>(x.size() == y.size(), kernel,
               "operands hold " + std::to_string(x.size()) + " and " + std::to_string(y.size()) +
                   " values");
  }
};

}  // namespace

template <typename T>
std::unique_ptr<Backend<T>> make_cpu_backend() {
  return std::make_unique<CpuBackend<T>>();
}

template std::unique_ptr<Backend<float>> make_cpu_backend<float>();
template std::unique_ptr<Backend<double>> make_cpu_backend<double>();

}  // namespace kwm
