// Fixed-interval smoothing: x_t | y_{0:T-1} for every t.
//  - rts_smoother: Rauch-Tung-Striebel, for a filter run without a diffuse phase.
//  - backward_smoother: the Bryson-Frazier / de Jong backward recursion for r_t, N_t (Durbin &
//    Koopman 2012, 4.4.4), continued through the diffuse phase by the exact initial smoother
//    (DK 2012, 5.3, in the univariate form of 6.4). Equals RTS when there is no diffuse phase.
//  - smoother: picks rts_smoother, or backward_smoother when the filter had a diffuse phase.
#pragma once

#include <vector>

#include "core/ssm/kalman_filter.hpp"

namespace kwm::ssm {

struct SmootherResult {
  std::vector<Vector> means;  // E[x_t | y_{0:T-1}]
  std::vector<Matrix> covs;   // Cov[x_t | y_{0:T-1}]
};

SmootherResult rts_smoother(const LinearGaussianModel& model, const FilterResult& filtered);
SmootherResult backward_smoother(const LinearGaussianModel& model, const FilterResult& filtered);
SmootherResult smoother(const LinearGaussianModel& model, const FilterResult& filtered);

}  // namespace kwm::ssm
