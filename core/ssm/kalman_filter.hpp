// The Kalman filter driver: runs predict / condition_on over a series with missing values, the
// exact initial (diffuse) filter first when the initial state has a diffuse part.
#pragma once

#include <vector>

#include "core/ssm/linear_gaussian_model.hpp"
#include "core/ssm/steps.hpp"

namespace kwm::ssm {

// What the filter did at time t, kept for the smoother.
struct FilterStep {
  std::vector<Index> observed;  // rows of y_t that were observed
  bool diffuse = false;         // processed by the exact initial filter
  // Regular steps with at least one observed row:
  Matrix H_obs;                 // H restricted to the observed rows
  Vector innovation;            // e_t
  SpdFactor innovation_factor;  // S_t
  Matrix gain;                  // K_t = P_t H^T S_t^-1 (filtered-state gain)
  // Diffuse steps: the observed rows decorrelated by R_obs = L L^T (y* = L^-1 y, H* = L^-1 H)
  // and absorbed one at a time (Durbin & Koopman 2012, 6.4).
  std::vector<DiffuseScalarUpdate> scalar_updates;
};

struct FilterResult {
  // Index t = 0..T-1. predicted: x_t | y_{0:t-1}; filtered: x_t | y_{0:t}.
  std::vector<Vector> predicted_means;
  std::vector<Matrix> predicted_covs;
  std::vector<Vector> filtered_means;
  std::vector<Matrix> filtered_covs;
  // Pinf parts for t < diffuse_steps (predicted and filtered); zero matrices afterwards.
  std::vector<Matrix> predicted_diffuse_covs;
  std::vector<Matrix> filtered_diffuse_covs;
  Gaussian next_prediction;          // x_T | y_{0:T-1}
  std::vector<double> loglik_terms;  // per time step
  double loglik = 0;        // sum of loglik_terms (the diffuse log-likelihood when diffuse)
  Index n_obs = 0;          // observed scalar values
  Index n_missing = 0;      // missing (NaN) scalar values
  Index diffuse_steps = 0;  // d: time steps handled by the exact initial filter
  // Scalar observations absorbed with f_inf > 0. Each contributes -log(2 pi)/2 - log(f_inf)/2 to
  // loglik (DK 2012 7.2.5, statsmodels); R KFAS leaves out its -log(2 pi)/2, so KFAS reports
  // loglik + n_diffuse_obs * log(2 pi)/2.
  Index n_diffuse_obs = 0;
  std::vector<FilterStep> steps;
};

// Filters y (T x p, NaN = missing) with inputs u (T x k; ignored when the model has no B; u_t
// drives the transition from t to t+1). Throws ModelError for mismatched data shapes and
// NotPositiveDefinite when an innovation covariance is singular.
FilterResult kalman_filter(const LinearGaussianModel& model, const Matrix& y, const Matrix& u = {});

}  // namespace kwm::ssm
