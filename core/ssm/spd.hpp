// The one place where symmetric positive-definite systems are factored and solved (Cholesky),
// so that no step of the filter or smoother ever forms an explicit inverse.
#pragma once

#include <stdexcept>
#include <string>

#include "core/ssm/gaussian.hpp"

namespace kwm::ssm {

// Thrown when a matrix that the equations need to be positive definite is not (numerically).
class NotPositiveDefinite : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A = L L^T for a symmetric positive-definite A.
class SpdFactor {
 public:
  SpdFactor() = default;
  // Throws NotPositiveDefinite naming `what` when the Cholesky factorisation fails.
  SpdFactor(const Matrix& a, const std::string& what);

  // A^-1 B
  Matrix solve(const Matrix& b) const;
  Vector solve(const Vector& b) const;
  // B A^-1 (for the gain K = U A^-1)
  Matrix solve_right(const Matrix& b) const;
  // log det A = 2 sum log L_ii
  double log_det() const;
  // x^T A^-1 x computed as |L^-1 x|^2
  double mahalanobis(const Vector& x) const;
  // L
  Matrix lower() const { return llt_.matrixL(); }

 private:
  Eigen::LLT<Matrix> llt_;
};

// True when A is symmetric to relative tolerance 1e-10 (of its largest entry).
bool is_symmetric(const Matrix& a);
// True when the Cholesky factorisation of A succeeds.
bool is_positive_definite(const Matrix& a);
// True when A is positive semi-definite: a pivoted LDL^T with no pivot below
// -1e-12 * (largest diagonal entry).
bool is_positive_semidefinite(const Matrix& a);

}  // namespace kwm::ssm
