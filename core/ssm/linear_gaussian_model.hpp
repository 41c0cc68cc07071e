// The linear-Gaussian state-space model with known parameters:
//   x_{t+1} = F x_t + B u_t + w_t,  w_t ~ N(0, Q)
//   y_t     = H x_t + v_t,          v_t ~ N(0, R)
// and the distribution of the first state x_0 ~ N(x0, P0 + kappa Pinf), kappa -> infinity.
#pragma once

#include <stdexcept>
#include <string>

#include "core/ssm/gaussian.hpp"

namespace kwm::ssm {

// Thrown by validate() for a model whose matrices do not fit together; the message names the
// matrix ("F", "Q", ...) and what was expected, so front ends can prefix their file name.
class ModelError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// x_0 ~ N(mean, cov + kappa diffuse_cov) with kappa -> infinity (Durbin & Koopman 2012, 5.1).
// diffuse_cov == 0: known (or large-variance) initialisation; diffuse_cov == I, cov == 0:
// fully diffuse. Mixed cases (some states diffuse, some known) are allowed.
struct InitialState {
  Vector mean;
  Matrix cov;
  Matrix diffuse_cov;

  static InitialState known(Vector x0, Matrix p0);
  // Approximate diffuse: P0 = variance I (statsmodels' initialize_approximate_diffuse).
  static InitialState large_variance(Index n, double variance);
  // Exact diffuse: mean 0, P* = 0, Pinf = I.
  static InitialState exact_diffuse(Index n);
  bool is_diffuse() const {
    return diffuse_cov.size() > 0 && diffuse_cov.cwiseAbs().maxCoeff() > 0;
  }
};

struct LinearGaussianModel {
  Matrix F;  // n x n transition
  Matrix B;  // n x k input matrix (k = 0: no inputs)
  Matrix H;  // p x n observation
  Matrix Q;  // n x n process noise covariance (positive semi-definite)
  Matrix R;  // p x p observation noise covariance (positive definite)
  InitialState init;

  Index state_dim() const { return F.rows(); }
  Index obs_dim() const { return H.rows(); }
  Index input_dim() const { return B.cols(); }

  // Checks shapes, symmetry and definiteness: F square, H p x n, B n x k, Q and P0 symmetric PSD,
  // R symmetric PD, Pinf symmetric PSD, everything finite. Throws ModelError.
  void validate() const;
};

}  // namespace kwm::ssm
