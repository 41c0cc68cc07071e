// Initialisations and shape/definiteness validation of the linear-Gaussian model.
#include "core/ssm/linear_gaussian_model.hpp"

#include <fmt/format.h>

#include "core/ssm/spd.hpp"

namespace kwm::ssm {

InitialState InitialState::known(Vector x0, Matrix p0) {
  const Index n = x0.size();
  return InitialState{std::move(x0), std::move(p0), Matrix::Zero(n, n)};
}

InitialState InitialState::large_variance(Index n, double variance) {
  return InitialState{Vector::Zero(n), variance * Matrix::Identity(n, n), Matrix::Zero(n, n)};
}

InitialState InitialState::exact_diffuse(Index n) {
  return InitialState{Vector::Zero(n), Matrix::Zero(n, n), Matrix::Identity(n, n)};
}

namespace {

void expect_shape(const Matrix& m, const char* name, Index rows, Index cols) {
  if (m.rows() != rows || m.cols() != cols) {
    throw ModelError(fmt::format("'{}' must be a {}x{} matrix; got {}x{}", name, rows, cols,
                                 m.rows(), m.cols()));
  }
  if (!m.allFinite()) throw ModelError(fmt::format("'{}' has a non-finite entry", name));
}

void expect_covariance(const Matrix& m, const char* name, bool definite) {
  if (!is_symmetric(m)) throw ModelError(fmt::format("'{}' must be symmetric", name));
  if (definite && !is_positive_definite(m)) {
    throw ModelError(
        fmt::format("'{}' must be positive definite (Cholesky factorisation failed)", name));
  }
  if (!definite && !is_positive_semidefinite(m)) {
    throw ModelError(fmt::format("'{}' must be positive semi-definite", name));
  }
}

}  // namespace

void LinearGaussianModel::validate() const {
  const Index n = F.rows();
  if (n == 0 || F.cols() != n) {
    throw ModelError(
        fmt::format("'F' must be a non-empty square matrix; got {}x{}", F.rows(), F.cols()));
  }
  expect_shape(F, "F", n, n);
  if (H.cols() != n || H.rows() == 0) {
    throw ModelError(
        fmt::format("'H' must be a px{} matrix with p >= 1; got {}x{}", n, H.rows(), H.cols()));
  }
  expect_shape(H, "H", H.rows(), n);
  const Index p = H.rows();
  if (B.size() > 0) expect_shape(B, "B", n, B.cols());
  expect_shape(Q, "Q", n, n);
  expect_shape(R, "R", p, p);
  if (init.mean.size() != n) {
    throw ModelError(
        fmt::format("'x0' must be a vector of length {}; got {}", n, init.mean.size()));
  }
  if (!init.mean.allFinite()) throw ModelError("'x0' has a non-finite entry");
  expect_shape(init.cov, "P0", n, n);
  expect_shape(init.diffuse_cov, "Pinf", n, n);
  expect_covariance(Q, "Q", false);
  expect_covariance(R, "R", true);
  expect_covariance(init.cov, "P0", false);
  expect_covariance(init.diffuse_cov, "Pinf", false);
}

}  // namespace kwm::ssm
