// Shape checks of the batched Backend operations, shared by every backend so that they accept and
// reject the same entries with the same message: each entry is checked before any work is queued,
// and a mismatch names the operation, the entry and the dimensions. C++17 (the CUDA sources
// include it).
#pragma once

#include <cstddef>
#include <string>

#include "core/backend/backend.hpp"

namespace kwm::batch {

inline std::string dims(Index rows, Index cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

[[noreturn]] inline void fail(const std::string& where, std::size_t entry,
                              const std::string& what) {
  throw ShapeError(where + ": entry " + std::to_string(entry) + ": " + what);
}

inline void require_lengths(const std::string& where, std::size_t a, std::size_t b, std::size_t c) {
  if (a != b || a != c) {
    throw ShapeError(where + ": operand lists differ in length (" + std::to_string(a) + ", " +
                     std::to_string(b) + ", " + std::to_string(c) + ")");
  }
}

template <typename X>
void require_entry(const std::string& where, std::size_t entry, const X* x) {
  if (x == nullptr) fail(where, entry, "null tensor");
}

// Rows and columns of op(X).
template <typename T>
Index op_rows(Op op, const Tensor<T>& x) {
  return op == Op::none ? x.rows() : x.cols();
}
template <typename T>
Index op_cols(Op op, const Tensor<T>& x) {
  return op == Op::none ? x.cols() : x.rows();
}

// op(A) op(B) must be rows x cols.
template <typename T>
void require_product(const std::string& where, std::size_t entry, Op op_a, Op op_b,
                     const Tensor<T>& a, const Tensor<T>& b, Index rows, Index cols) {
  if (op_cols(op_a, a) != op_rows(op_b, b) || op_rows(op_a, a) != rows ||
      op_cols(op_b, b) != cols) {
    fail(where, entry,
         "op(A) is " + dims(op_rows(op_a, a), op_cols(op_a, a)) + ", op(B) is " +
             dims(op_rows(op_b, b), op_cols(op_b, b)) + ", C is " + dims(rows, cols));
  }
}

// C_i <- alpha op(A_i) op(B_i) + beta C_i.
template <typename T>
void check_gemm(const std::string& where, Op op_a, Op op_b, const ConstTensors<T>& a,
                const ConstTensors<T>& b, const Tensors<T>& c) {
  require_lengths(where, a.size(), b.size(), c.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    require_entry(where, i, a[i]);
    require_entry(where, i, b[i]);
    require_entry(where, i, c[i]);
    require_product(where, i, op_a, op_b, *a[i], *b[i], c[i]->rows(), c[i]->cols());
  }
}

// C <- alpha sum_i op(A_i) op(B_i) + beta C.
template <typename T>
void check_gemm_sum(const std::string& where, Op op_a, Op op_b, const ConstTensors<T>& a,
                    const ConstTensors<T>& b, const Tensor<T>& c) {
  require_lengths(where, a.size(), b.size(), a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    require_entry(where, i, a[i]);
    require_entry(where, i, b[i]);
    require_product(where, i, op_a, op_b, *a[i], *b[i], c.rows(), c.cols());
  }
}

// X_i <- B_i (L L^T)^-1.
template <typename T>
void check_solve_right(const std::string& where, const Tensor<T>& l, const ConstTensors<T>& b,
                       const Tensors<T>& x) {
  if (!l.is_square()) {
    throw ShapeError(where + ": L must be square; got " + dims(l.rows(), l.cols()));
  }
  require_lengths(where, b.size(), x.size(), b.size());
  for (std::size_t i = 0; i < b.size(); ++i) {
    require_entry(where, i, b[i]);
    require_entry(where, i, x[i]);
    if (b[i]->cols() != l.rows() || x[i]->rows() != b[i]->rows() || x[i]->cols() != b[i]->cols()) {
      fail(where, i,
           "L is " + dims(l.rows(), l.cols()) + ", B is " + dims(b[i]->rows(), b[i]->cols()) +
               ", X is " + dims(x[i]->rows(), x[i]->cols()) +
               " (B and X need the same shape with L.rows() columns)");
    }
  }
}

// P_i <- P_i - (K_i U_i^T + U_i K_i^T) / 2.
template <typename T>
void check_downdate(const std::string& where, const Tensors<T>& p, const ConstTensors<T>& k,
                    const ConstTensors<T>& u) {
  require_lengths(where, p.size(), k.size(), u.size());
  for (std::size_t i = 0; i < p.size(); ++i) {
    require_entry(where, i, p[i]);
    require_entry(where, i, k[i]);
    require_entry(where, i, u[i]);
    const Tensor<T>& pi = *p[i];
    if (!pi.is_square() || k[i]->rows() != pi.rows() || u[i]->rows() != pi.rows() ||
        k[i]->cols() != u[i]->cols()) {
      fail(where, i,
           "P is " + dims(pi.rows(), pi.cols()) + ", K is " + dims(k[i]->rows(), k[i]->cols()) +
               ", U is " + dims(u[i]->rows(), u[i]->cols()) + " (P n x n, K and U both n x m)");
    }
  }
}

template <typename T>
void check_list(const std::string& where, const ConstTensors<T>& xs) {
  for (std::size_t i = 0; i < xs.size(); ++i) require_entry(where, i, xs[i]);
}

}  // namespace kwm::batch
