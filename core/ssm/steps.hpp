// The filter's pure steps: predict (time update) and condition_on (measurement update), plus the
// exact diffuse measurement update of one scalar observation (Durbin & Koopman 2012, 5.2 and 6.4).
#pragma once

#include <vector>

#include "core/ssm/gaussian.hpp"
#include "core/ssm/spd.hpp"

namespace kwm::ssm {

// x_{t+1} | y_{0:t} from x_t | y_{0:t}:  mean F m + Bu,  cov F P F^T + Q.
Gaussian predict(const Gaussian& filtered, const Matrix& F, const Vector& Bu, const Matrix& Q);

// The rows of y that are observed (not NaN), in order.
std::vector<Index> observed_rows(const Vector& y);
// y, H and R restricted to the observed rows.
Vector select_rows(const Vector& y, const std::vector<Index>& rows);
Matrix select_rows(const Matrix& h, const std::vector<Index>& rows);
Matrix select_block(const Matrix& r, const std::vector<Index>& rows);

// One measurement update with the innovation statistics the smoother and the likelihood need.
struct Conditioned {
  Gaussian posterior;
  Vector innovation;            // e = y - H m
  SpdFactor innovation_factor;  // S = H P H^T + R = L L^T
  Matrix gain;                  // K = P H^T S^-1 (n x p)
  double loglik = 0;            // log N(y; H m, S)
};

// x_t | y_{0:t} from x_t | y_{0:t-1} and a fully observed y (use select_rows first).
// Covariance in Joseph form (I - K H) P (I - K H)^T + K R K^T, which stays symmetric PSD.
Conditioned condition_on(const Gaussian& prior, const Vector& y, const Matrix& H, const Matrix& R);

// Exact diffuse state x ~ N(mean, cov + kappa diffuse_cov), kappa -> infinity.
struct DiffuseGaussian {
  Vector mean;
  Matrix cov;          // P*
  Matrix diffuse_cov;  // Pinf
};

// One scalar observation y = z^T x + noise (variance noise_var) absorbed by the exact initial
// Kalman filter in univariate form. Keeps what the exact diffuse smoother needs.
struct DiffuseScalarUpdate {
  Vector z;
  double innovation = 0;  // v = y - z^T a
  double f_inf = 0;       // z^T Pinf z
  double f_star = 0;      // z^T P* z + noise variance
  bool diffuse = false;   // f_inf > tolerance: the Pinf branch was taken
  Vector k0;              // Pinf z / f_inf (diffuse) or P* z / f_star (regular)
  Vector k1;              // P* z / f_inf - Pinf z f_star / f_inf^2 (diffuse only)
  double loglik = 0;      // -(log 2 pi + w) / 2 with w = log f_inf or log f_star + v^2 / f_star
};

// Threshold on f_inf and on the entries of Pinf below which they count as zero.
inline constexpr double kDiffuseTolerance = 1e-8;

// Updates `state` in place with one scalar observation; returns the statistics.
DiffuseScalarUpdate condition_on_diffuse_scalar(DiffuseGaussian& state, const Vector& z, double y,
                                                double noise_var);

}  // namespace kwm::ssm
