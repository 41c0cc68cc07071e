// The shared-row (Kronecker) Kalman step in information form on Eigen fp64 (ALGORITHMS.md
// section 4, batched), the update every Kalman LM learner applies to a linear layer
// z = W a (+ b): rows of W share one input information L (d_in x d_in), cov(vec W) = S (x) L^-1
// with an output factor S that the caller applies to the cross statistics before the solve.
//
//   L <- lambda L + (1 - lambda) L0 + increment          (forgetting toward the prior L0 = I / v)
//   W <- W + cross L^-1                                  (Cholesky solve, never an inverse)
//
// With lambda = 1 this is the plain accumulation L <- L + increment. Forgetting toward the prior
// (rather than L <- lambda L) keeps L >= L0, so the input covariance never exceeds the prior
// variance v: the covariance ceiling and trace cap of section 7 hold by construction, while
// lambda < 1 bounds L above under bounded inputs (the covariance floor).
#pragma once

#include <Eigen/Core>

#include "core/kalman/config.hpp"

namespace kwm::lm {

struct SharedRowOutcome {
  bool applied = false;  // false: weight and information untouched
  bool nonfinite = false;
  int jitter_retries = 0;
};

// weight: d_out x d_in, information: d_in x d_in (symmetric PD), increment: d_in x d_in
// (symmetric), cross: d_out x d_in (already multiplied by the output factor, e.g. D / r or
// G^-1 D). prior_precision = 1 / initial_variance. Skips (touching nothing) on NaN/Inf and when L
// stays indefinite after the escalating jitter of `jitter`; a jittered success keeps the L that
// was solved with. Throws std::invalid_argument on mismatched shapes or lambda outside (0, 1].
SharedRowOutcome shared_row_information_update(Eigen::MatrixXd& weight,
                                               Eigen::MatrixXd& information,
                                               const Eigen::MatrixXd& increment,
                                               const Eigen::MatrixXd& cross, double lambda,
                                               double prior_precision,
                                               const kwm::JitterConfig& jitter);

// Lower Cholesky factor of a + j I with the escalating jitter of core/kalman/jittered_cholesky
// (j = 0, then initial_relative * trace(a)/n * growth^k). Returns false when every attempt fails.
bool jittered_llt(const Eigen::MatrixXd& a, const kwm::JitterConfig& jitter,
                  Eigen::MatrixXd& factor, double& used_jitter, int& retries);

}  // namespace kwm::lm
