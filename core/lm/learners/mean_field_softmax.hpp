// The O(V) mean-field output factor of a softmax readout (ALGORITHMS.md section 4):
//   G = diag(pbar + delta) - pbar pbar^T,   delta > 0,
// the moment-matched categorical covariance diag(p) - p p^T averaged over tokens into one
// V x V factor and kept positive definite by delta. G^-1 is applied in closed form by
// Sherman-Morrison: with Dg = diag(pbar + delta) and u = Dg^-1 pbar,
//   G^-1 X = Dg^-1 X + u (pbar^T Dg^-1 X) / (1 - pbar^T u),
// where pbar^T u = sum pbar_i^2 / (pbar_i + delta) < sum pbar_i <= 1 keeps the denominator > 0.
#pragma once

#include <Eigen/Core>

namespace kwm::lm {

// Returns G^-1 x for x (V x k). pbar: V entries, each >= 0, sum <= 1 (+ rounding). Throws
// std::invalid_argument for delta <= 0, a size mismatch, or pbar outside that set.
Eigen::MatrixXd mean_field_softmax_solve(const Eigen::VectorXd& pbar, double delta,
                                         const Eigen::MatrixXd& x);

// The dense G itself (tests and diagnostics only: V x V).
Eigen::MatrixXd mean_field_softmax_factor(const Eigen::VectorXd& pbar, double delta);

}  // namespace kwm::lm
