// Information-form shared-row update with jittered Cholesky and skip-on-failure.
#include "core/lm/learners/shared_row_information.hpp"

#include <Eigen/Cholesky>
#include <cmath>
#include <stdexcept>
#include <string>

namespace kwm::lm {

bool jittered_llt(const Eigen::MatrixXd& a, const kwm::JitterConfig& jitter,
                  Eigen::MatrixXd& factor, double& used_jitter, int& retries) {
  const Eigen::Index n = a.rows();
  used_jitter = 0.0;
  retries = 0;
  auto attempt = [&](double j) {
    Eigen::MatrixXd shifted = a;
    shifted.diagonal().array() += j;
    Eigen::LLT<Eigen::MatrixXd> llt(shifted);
    if (llt.info() != Eigen::Success) return false;
    factor = llt.matrixL();
    return factor.allFinite();
  };
  if (!a.allFinite()) return false;
  if (attempt(0.0)) return true;
  const double mean_diagonal = a.trace() / static_cast<double>(n);
  double j = jitter.initial_relative * (mean_diagonal > 0.0 ? mean_diagonal : 1.0);
  for (int k = 0; k < jitter.max_retries; ++k) {
    retries = k + 1;
    used_jitter = j;
    if (attempt(j)) return true;
    j *= jitter.growth;
  }
  return false;
}

SharedRowOutcome shared_row_information_update(Eigen::MatrixXd& weight,
                                               Eigen::MatrixXd& information,
                                               const Eigen::MatrixXd& increment,
                                               const Eigen::MatrixXd& cross, double lambda,
                                               double prior_precision,
                                               const kwm::JitterConfig& jitter) {
  const Eigen::Index d_in = information.rows();
  if (information.cols() != d_in || increment.rows() != d_in || increment.cols() != d_in ||
      weight.cols() != d_in || cross.rows() != weight.rows() || cross.cols() != d_in)
    throw std::invalid_argument(
        "shared-row information update: needs W d_out x d_in, L and increment d_in x d_in, cross "
        "d_out x d_in; got W " +
        std::to_string(weight.rows()) + " x " + std::to_string(weight.cols()) + ", L " +
        std::to_string(information.rows()) + " x " + std::to_string(information.cols()) +
        ", increment " + std::to_string(increment.rows()) + " x " +
        std::to_string(increment.cols()) + ", cross " + std::to_string(cross.rows()) + " x " +
        std::to_string(cross.cols()));
  if (!(lambda > 0.0 && lambda <= 1.0))
    throw std::invalid_argument("shared-row information update: lambda must be in (0, 1]; got " +
                                std::to_string(lambda));
  SharedRowOutcome outcome;
  if (!increment.allFinite() || !cross.allFinite()) {
    outcome.nonfinite = true;
    return outcome;
  }
  // The new L beside the old one so that a failed factorisation leaves the block untouched.
  Eigen::MatrixXd updated = lambda * information + increment;
  if (lambda < 1.0) updated.diagonal().array() += (1.0 - lambda) * prior_precision;
  updated = 0.5 * (updated + updated.transpose()).eval();
  Eigen::MatrixXd factor;
  double used_jitter = 0.0;
  if (!jittered_llt(updated, jitter, factor, used_jitter, outcome.jitter_retries)) return outcome;
  if (used_jitter > 0.0) updated.diagonal().array() += used_jitter;  // the L that was solved
  // W += cross L^-1  <=>  (L^-1 cross^T)^T with L = F F^T.
  Eigen::MatrixXd step = cross.transpose();
  factor.triangularView<Eigen::Lower>().solveInPlace(step);
  factor.transpose().triangularView<Eigen::Upper>().solveInPlace(step);
  if (!step.allFinite()) {
    outcome.nonfinite = true;
    return outcome;
  }
  weight += step.transpose();
  information = std::move(updated);
  outcome.applied = true;
  return outcome;
}

}  // namespace kwm::lm
