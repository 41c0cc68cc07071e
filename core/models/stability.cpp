// Eigenvalue-based stability checks for the recurrent matrices A and A - K C.
#include "core/models/stability.hpp"

#include <Eigen/Eigenvalues>

namespace kwm {

double spectral_radius(const Eigen::MatrixXd& a) {
  if (a.size() == 0) return 0.0;
  Eigen::EigenSolver<Eigen::MatrixXd> solver(a, /*computeEigenvectors=*/false);
  return solver.eigenvalues().cwiseAbs().maxCoeff();
}

double stable_gain_scale(const Eigen::MatrixXd& a, const Eigen::MatrixXd& g, double bound,
                         int iterations) {
  if (spectral_radius(a - g) <= bound) return 1.0;
  double stable = 0.0;
  double unstable = 1.0;
  for (int i = 0; i < iterations; ++i) {
    const double mid = 0.5 * (stable + unstable);
    if (spectral_radius(a - mid * g) <= bound) {
      stable = mid;
    } else {
      unstable = mid;
    }
  }
  return stable;
}

}  // namespace kwm
