// Dense fp64 linear algebra types of the state-space layer and the Gaussian they describe.
#pragma once

#include <Eigen/Dense>

namespace kwm::ssm {

using Matrix = Eigen::MatrixXd;
using Vector = Eigen::VectorXd;
using Index = Eigen::Index;

// A multivariate normal N(mean, cov).
struct Gaussian {
  Vector mean;
  Matrix cov;
};

// (A + A^T) / 2: every covariance leaves a step through here so rounding never breaks symmetry.
inline Matrix symmetrized(const Matrix& a) { return 0.5 * (a + a.transpose()); }

}  // namespace kwm::ssm
