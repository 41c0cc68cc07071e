// Backend: the compute interface every learner's inner loop is written against.
// One implementation per device (cpu/ on Eigen, the fp64 reference; cuda/ on cuBLAS/cuSOLVER).
// All matrices are column-major Tensors; vectors are n x 1 Tensors. Every kernel checks shapes
// and throws ShapeError with the kernel name and the offending dimensions.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/backend/tensor.hpp"

namespace kwm {

enum class Op { none, transpose };

// Operand lists of the batched operations: one entry per block. A tensor may appear in several
// input entries (a shared factor or innovation); an output that appears more than once is
// updated in entry order, as the loop over the single operation would. Outputs must not alias
// inputs of other entries. (std::vector rather than std::span: the CUDA sources build as C++17.)
template <typename T>
using ConstTensors = std::vector<const Tensor<T>*>;
template <typename T>
using Tensors = std::vector<Tensor<T>*>;

template <typename T>
class Backend {
 public:
  virtual ~Backend() = default;

  // "cpu" or "cuda"; used in logs, test names and benchmark tables.
  virtual std::string name() const = 0;
  virtual MemorySpace space() const = 0;

  // ---- memory -------------------------------------------------------------------------------
  // A zero-filled rows x cols tensor in this backend's memory.
  virtual Tensor<T> allocate(Index rows, Index cols) = 0;
  // host points at rows*cols column-major values.
  virtual void upload(const T* host, Tensor<T>& dst) = 0;
  virtual void download(const Tensor<T>& src, T* host) = 0;
  virtual void copy(const Tensor<T>& src, Tensor<T>& dst) = 0;
  virtual void fill(Tensor<T>& x, T value) = 0;
  // Blocks until every queued kernel has finished (a no-op on the CPU).
  virtual void synchronize() = 0;

  // ---- BLAS-like ----------------------------------------------------------------------------
  // C <- alpha op(A) op(B) + beta C
  virtual void gemm(Op op_a, Op op_b, T alpha, const Tensor<T>& a, const Tensor<T>& b, T beta,
                    Tensor<T>& c) = 0;
  // C <- alpha A A^T + beta C (op none) or alpha A^T A + beta C (op transpose).
  // C is symmetric on return: both triangles are written.
  virtual void syrk(Op op, T alpha, const Tensor<T>& a, T beta, Tensor<T>& c) = 0;
  // y <- alpha x + y (any shape, same size)
  virtual void axpy(T alpha, const Tensor<T>& x, Tensor<T>& y) = 0;
  // x <- alpha x
  virtual void scale(T alpha, Tensor<T>& x) = 0;
  // A <- diag(d) A  (d has A.rows() entries): the diagonal-covariance product U = diag(p) H^T.
  virtual void scale_rows(const Tensor<T>& d, Tensor<T>& a) = 0;
  // sum_i x_i y_i over all entries (same size).
  virtual T dot(const Tensor<T>& x, const Tensor<T>& y) = 0;

  // ---- symmetric matrices --------------------------------------------------------------------
  // A <- A + alpha I
  virtual void add_identity(T alpha, Tensor<T>& a) = 0;
  // A <- A + diag(d)
  virtual void add_diagonal(const Tensor<T>& d, Tensor<T>& a) = 0;
  // A <- (A + A^T) / 2
  virtual void symmetrize(Tensor<T>& a) = 0;
  virtual T trace(const Tensor<T>& a) = 0;
  // d <- diag(A) (d is n x 1)
  virtual void diagonal(const Tensor<T>& a, Tensor<T>& d) = 0;

  // ---- Riccati --------------------------------------------------------------------------------
  // P <- P - (K U^T + U K^T) / 2 for P n x n, K and U n x m: the covariance downdate
  // P - K U^T of ALGORITHMS.md section 2 written so that the result is symmetric by construction.
  virtual void riccati_downdate(Tensor<T>& p, const Tensor<T>& k, const Tensor<T>& u) = 0;
  // p_i <- p_i - sum_j K_ij U_ij: the same downdate restricted to a diagonal covariance p (n x 1).
  virtual void diagonal_downdate(Tensor<T>& p, const Tensor<T>& k, const Tensor<T>& u) = 0;

  // ---- factorisations ------------------------------------------------------------------------
  // In-place lower Cholesky factor A = L L^T (the strict upper triangle is zeroed).
  // Returns false, leaving A unspecified, when A is not numerically positive definite.
  virtual bool cholesky(Tensor<T>& a) = 0;
  // B <- (L L^T)^-1 B, L the factor returned by cholesky().
  virtual void cholesky_solve(const Tensor<T>& l, Tensor<T>& b) = 0;
  // B <- B (L L^T)^-1: the gain K = U S^-1 without forming S^-1.
  virtual void cholesky_solve_right(const Tensor<T>& l, Tensor<T>& b) = 0;
  // w <- eigenvalues of symmetric A, ascending (w is n x 1).
  virtual void symmetric_eigenvalues(const Tensor<T>& a, Tensor<T>& w) = 0;
  // Eigenvalues of symmetric A clamped to [floor, ceiling], A rebuilt as V diag(w) V^T.
  // Returns how many eigenvalues were moved.
  virtual Index clamp_eigenvalues(Tensor<T>& a, T floor, T ceiling) = 0;

  // ---- batched: one call for many blocks -------------------------------------------------------
  // Each is equivalent to the loop over the single operation in entry order (the CPU backend runs
  // exactly that loop, so its results are those of the loop to the bit); a device backend groups
  // entries of equal shape into one launch. Every entry's shapes are checked before any work.
  // C_i <- alpha op(A_i) op(B_i) + beta C_i for every i; shapes may differ between entries.
  virtual void gemm_batched(Op op_a, Op op_b, T alpha, const ConstTensors<T>& a,
                            const ConstTensors<T>& b, T beta, const Tensors<T>& c) = 0;
  // C <- alpha sum_i op(A_i) op(B_i) + beta C (beta = 0: C is not read), summed in entry order:
  // the partial innovation covariance sum_b H_b U_b. Inner dimensions may differ between terms.
  virtual void gemm_sum(Op op_a, Op op_b, T alpha, const ConstTensors<T>& a,
                        const ConstTensors<T>& b, T beta, Tensor<T>& c) = 0;
  // X_i <- B_i (L L^T)^-1 for every i (X_i may be B_i): every block's gain K_b = U_b S^-1 from
  // the one factor L of S.
  virtual void cholesky_solve_right_batched(const Tensor<T>& l, const ConstTensors<T>& b,
                                            const Tensors<T>& x) = 0;
  // riccati_downdate(P_i, K_i, U_i) for every i.
  virtual void riccati_downdate_batched(const Tensors<T>& p, const ConstTensors<T>& k,
                                        const ConstTensors<T>& u) = 0;

  // ---- checks ---------------------------------------------------------------------------------
  // True when every entry is finite (no NaN, no Inf). Waits for the device.
  virtual bool all_finite(const Tensor<T>& x) = 0;
  // Every entry of target <- NaN when some entry of some checked tensor is NaN or Inf; target
  // unchanged otherwise. The verdict stays on the device (no host synchronisation): the DEKF
  // poisons its partial sum with it, so one host read after the all-reduce decides for all ranks.
  virtual void poison_unless_finite(const ConstTensors<T>& checked, Tensor<T>& target) = 0;
};

// Backends by name: "cpu" always exists; "cuda" exists when the build found CUDA and a GPU is
// visible at run time. Throws std::runtime_error naming what is missing otherwise.
template <typename T>
std::unique_ptr<Backend<T>> make_backend(const std::string& name);

// True when make_backend<T>("cuda") would succeed (built with CUDA and a device is present).
bool cuda_available();

}  // namespace kwm
