// Cholesky factor, solves and definiteness checks for the state-space layer.
#include "core/ssm/spd.hpp"

#include <cmath>

namespace kwm::ssm {

SpdFactor::SpdFactor(const Matrix& a, const std::string& what) : llt_(a) {
  if (llt_.info() != Eigen::Success || !llt_.matrixLLT().diagonal().allFinite() ||
      (llt_.matrixLLT().diagonal().array() <= 0.0).any()) {
    throw NotPositiveDefinite(what + " is not positive definite (Cholesky factorisation failed)");
  }
}

Matrix SpdFactor::solve(const Matrix& b) const { return llt_.solve(b); }

Vector SpdFactor::solve(const Vector& b) const { return llt_.solve(b); }

Matrix SpdFactor::solve_right(const Matrix& b) const {
  // B A^-1 = (A^-1 B^T)^T since A is symmetric.
  return llt_.solve(b.transpose()).transpose();
}

double SpdFactor::log_det() const { return 2.0 * llt_.matrixLLT().diagonal().array().log().sum(); }

double SpdFactor::mahalanobis(const Vector& x) const {
  const Vector w = llt_.matrixL().solve(x);
  return w.squaredNorm();
}

bool is_symmetric(const Matrix& a) {
  if (a.rows() != a.cols()) return false;
  const double scale = a.cwiseAbs().maxCoeff();
  return (a - a.transpose()).cwiseAbs().maxCoeff() <= 1e-10 * scale;
}

bool is_positive_definite(const Matrix& a) {
  if (!a.allFinite()) return false;
  Eigen::LLT<Matrix> llt(a);
  return llt.info() == Eigen::Success && (llt.matrixLLT().diagonal().array() > 0.0).all();
}

bool is_positive_semidefinite(const Matrix& a) {
  if (!a.allFinite()) return false;
  if (a.size() == 0) return true;
  Eigen::LDLT<Matrix> ldlt(a);
  if (ldlt.info() != Eigen::Success) return false;
  const double scale = std::max(a.diagonal().cwiseAbs().maxCoeff(), 1e-300);
  return ldlt.vectorD().minCoeff() >= -1e-12 * scale;
}

}  // namespace kwm::ssm
