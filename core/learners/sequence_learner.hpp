// SequenceLearner: what the trainer drives, one time step at a time. A learner owns its model (or
// none, for baselines such as persistence), makes a one-step-ahead predictive distribution, then
// consumes the observation: it learns from it (training) or only advances its state (evaluation).
#pragma once

#include <Eigen/Core>
#include <string>

namespace kwm {

// One-step-ahead Gaussian predictive distribution of y_t (m outputs), in data units.
struct Prediction {
  Eigen::VectorXd mean;
  Eigen::VectorXd variance;  // marginal variances (diagonal of the predictive covariance)
};

class SequenceLearner {
 public:
  virtual ~SequenceLearner() = default;

  // Config name, e.g. "sensitivity-dekf", "adam-sensitivity", "ar", "persistence".
  virtual std::string name() const = 0;
  // Where the observation Jacobian comes from (ALGORITHMS.md section 5), logged and documented:
  // e.g. "forward sensitivities (RTRL), reverse-free", "none (closed-form least squares)".
  virtual std::string jacobian_source() const = 0;

  // Predictive distribution of y_t given inputs u_t (may be empty) and everything seen so far.
  virtual Prediction predict(const Eigen::VectorXd& u) = 0;
  // Consumes y_t (NaN entries are missing). learn = false: advance the state only (test data).
  virtual void observe(const Eigen::VectorXd& y, bool learn) = 0;
  // Back to the start of a sequence (state, not parameters): used between passes and before eval.
  virtual void reset_state() = 0;
};

}  // namespace kwm
