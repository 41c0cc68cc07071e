// Persistence baseline: yhat_t = the last observed y, per channel; the predictive variance is the
// running mean of its own squared one-step errors (online), floored. No model, no parameters.
#pragma once

#include <Eigen/Core>
#include <string>

#include "core/learners/sequence_learner.hpp"

namespace kwm {

struct PersistenceConfig {
  double initial_variance = 1.0;  // variance before a channel has scored one error (data units)
  double variance_floor = 1e-12;  // lower bound on the predictive variance (data units)
};

class PersistenceLearner final : public SequenceLearner {
 public:
  // channels: m. Throws std::invalid_argument on m < 1 or a variance that is not positive.
  PersistenceLearner(Eigen::Index channels, const PersistenceConfig& config = {});

  std::string name() const override { return "persistence"; }
  std::string jacobian_source() const override { return "none: no parameters (persistence)"; }

  // mean(i) = last observed y(i), NaN before channel i's first observation.
  Prediction predict(const Eigen::VectorXd& u) override;
  // learn = true also adds (y - last)^2 of each observed channel to the variance estimate.
  void observe(const Eigen::VectorXd& y, bool learn) override;
  // Forgets the last observations; keeps the variance estimate (it is learned, not state).
  void reset_state() override;

 private:
  PersistenceConfig config_;
  Eigen::VectorXd last_;            // last observed value per channel (NaN: none yet)
  Eigen::VectorXd squared_errors_;  // sum of (y_t - last)^2 per channel
  Eigen::VectorXd error_count_;     // number of terms in that sum
};

}  // namespace kwm
