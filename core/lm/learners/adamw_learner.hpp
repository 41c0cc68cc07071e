// adamw: the backprop baseline (ALGORITHMS.md section 10). The gradient of the mean NLL comes
// from the same transposed-Jacobian pass the linearized Kalman learners use,
//   g = -transpose_jacobian(theta, cache, onehot - p).parameters / tokens,
// and the step is PyTorch's torch.optim.AdamW (decoupled weight decay, bias-corrected moments):
//   theta <- theta (1 - lr_t wd mask);  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2
//   theta <- theta - lr_t / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// with lr_t from the warmup + constant/cosine schedule. On R ranks the per-rank gradient sums and
// token counts are all-reduced, so g is the mean over the global batch and every rank takes the
// same step.
#pragma once

#include <yaml-cpp/yaml.h>

#include <Eigen/Core>
#include <cstdint>
#include <memory>
#include <string>

#include "core/lm/gpt_config.hpp"
#include "core/lm/learners/adamw_schedule.hpp"
#include "core/lm/learners/language_learner.hpp"

namespace kwm::lm {

struct AdamWConfig {
  LearningRateSchedule schedule;  // learning_rate, schedule, warmup_steps, total_steps, ...
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double weight_decay = 0.0;
  // Which tensors decay: matrices (embeddings and linear weights; nanoGPT's choice, the default)
  // or all (torch.optim.AdamW over a single parameter group).
  bool decay_vectors = false;
  double gradient_clip = 0.0;  // clip the global gradient norm to this when > 0

  void validate() const;  // std::invalid_argument naming the key
};

// Keys: type (adamw), learning_rate, schedule (constant | cosine), warmup_steps, total_steps,
// min_learning_rate, beta1, beta2, epsilon, weight_decay, weight_decay_on (matrices | all),
// gradient_clip. Unknown key -> std::invalid_argument naming it.
AdamWConfig parse_adamw_config(const YAML::Node& learner);

class AdamWLearner final : public LanguageLearner {
 public:
  // theta_0 = GptParameters::init(model, seed).
  AdamWLearner(const AdamWConfig& config, const GptConfig& model, std::uint64_t seed,
               LmCollectives collectives = {});

  std::string name() const override { return "adamw"; }
  std::string derivative_label() const override { return "backprop (baseline)"; }
  StepReport step(const TokenBatch& batch) override;
  const GptParameters<double>& parameters() const override { return parameters_; }
  // Counters: step. Tensors: parameters, first_moment, second_moment (P x 1), written by rank 0
  // only (every rank holds the same replicated state).
  LearnerState state() const override;
  void restore(const LearnerState& state) override;
  void shift_head_bias(const Eigen::VectorXd& delta) override {
    add_to_head_bias(parameters_, delta, name());
  }

  // Gradient of the mean NLL over the global batch used by the last step (P), before clipping.
  const Eigen::VectorXd& last_gradient() const { return gradient_; }
  double last_learning_rate() const { return learning_rate_; }

 private:
  AdamWConfig config_;
  LmCollectives collectives_;
  GptParameters<double> parameters_;
  Eigen::VectorXd decay_mask_;  // 1 where weight decay applies
  Eigen::VectorXd first_moment_, second_moment_, gradient_;
  double learning_rate_ = 0.0;
  std::int64_t steps_ = 0;
};

// Factory entry (learner_factory.cpp): parses the `learner:` section (type adamw) and builds it.
std::unique_ptr<LanguageLearner> make_adamw_learner(const YAML::Node& learner,
                                                    const GptConfig& model, std::uint64_t seed,
                                                    LmCollectives collectives);

}  // namespace kwm::lm
