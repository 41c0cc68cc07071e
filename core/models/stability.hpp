// Spectral radii and the scalings that project recurrent matrices back into the stable set.
#pragma once

#include <Eigen/Dense>

namespace kwm {

// max |eigenvalue| of a square matrix (0 for an empty one).
double spectral_radius(const Eigen::MatrixXd& a);

// Largest s in [0, 1] found by bisection with spectral_radius(a - s * g) <= bound, assuming
// s = 0 qualifies (the caller has already made a stable). The stable set in s need not be an
// interval; bisection keeps the invariant that its lower end is stable, so the answer always is.
double stable_gain_scale(const Eigen::MatrixXd& a, const Eigen::MatrixXd& g, double bound,
                         int iterations = 60);

}  // namespace kwm
