// Adam (or AdamW) on the model's forward sensitivities, online, one step per observation: the
// gradient baseline of ALGORITHMS.md section 10 for the Kalman learners. Same H as they use
// (exact RTRL sensitivities, no backpropagation), but a first-order step with a learning rate
// and moment estimates instead of a Riccati recursion.
#pragma once

#include <Eigen/Core>
#include <memory>
#include <string>

#include "core/learners/sequence_learner.hpp"
#include "core/models/sequence_model.hpp"

namespace kwm {

struct AdamSensitivityConfig {
  double learning_rate = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double weight_decay = 0.0;   // AdamW decoupled decay, theta -= lr * wd * theta; 0 = Adam
  double gradient_clip = 0.0;  // clip ||g||_2 to this when > 0; 0 = off
  double noise_ema = 0.01;     // r <- (1 - a) r + a e^2, per channel, normalised units
  double initial_noise = 1.0;  // r before any innovation (normalised units)
  double noise_floor = 1e-6;   // lower bound on r (normalised units)
  double stability_margin = kDefaultStabilityMargin;  // project_to_stable after every step

  // Throws std::invalid_argument naming the offending key (adam.learning_rate, ...).
  void validate() const;
};

class AdamSensitivityLearner final : public SequenceLearner {
 public:
  // Takes the model with its normalisation already set (fit on the training split).
  AdamSensitivityLearner(std::unique_ptr<SequenceModel> model,
                         const AdamSensitivityConfig& config = {});

  std::string name() const override { return "adam-sensitivity"; }
  std::string jacobian_source() const override {
    return "forward sensitivities (RTRL), reverse-free; Adam step";
  }

  // model.step(u): mean in data units; variance r * scale^2 per channel.
  Prediction predict(const Eigen::VectorXd& u) override;
  // learn = true: one Adam step on g = -H^T R^-1 e (observed rows only; R = diag(r)), project
  // theta back to the stable set, then update r from e^2. Always: model.advance(y).
  // Throws std::logic_error without a preceding predict().
  void observe(const Eigen::VectorXd& y, bool learn) override;
  // Model state and sensitivities to zero; theta, Adam moments and r are kept.
  void reset_state() override;

  const SequenceModel& model() const { return *model_; }
  const Eigen::VectorXd& noise() const { return noise_; }  // r, normalised units
  long long steps() const { return steps_; }               // Adam steps taken

 private:
  std::unique_ptr<SequenceModel> model_;
  AdamSensitivityConfig config_;
  Eigen::VectorXd first_moment_, second_moment_;  // Adam m and v, size P
  Eigen::VectorXd noise_;                         // r per channel
  long long steps_ = 0;
  // From the last predict(): normalised prediction and its Jacobian.
  Eigen::VectorXd yhat_;
  Eigen::MatrixXd jacobian_;
  bool pending_ = false;
};

}  // namespace kwm
