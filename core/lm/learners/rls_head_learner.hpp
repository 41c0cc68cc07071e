// rls-head: "reverse-free (linear-in-parameters head)" (ALGORITHMS.md sections 4 and 5(a)).
// The body (embeddings, transformer blocks, final layer norm) stays at its seeded GPT-2 init, a
// fixed random-feature map; only the LM head [W b] (vocab x (d + 1)) learns, on the features
// a = [final LN output; 1]. Observation model: categorical, with the Kronecker (K-FAC-shaped)
// precision G (x) A:
//   A <- lambda A + (1 - lambda) A0 + sum a a^T          A0 = I / initial_variance (the prior)
//   G  = diag(pbar + delta) - pbar pbar^T               pbar: mean predicted probabilities
//   W <- W + G^-1 D A^-1,   D = sum (onehot - p) a^T    G^-1 by Sherman-Morrison, A by Cholesky
// Data-parallel: each rank sums its tokens' (A increment, D, sum p); one all-reduce; the rank
// that owns the head block solves and broadcasts the new head.
//
// The head is always untied: with a tied config (head weight = token embedding) the embedding
// would be the body's input and the head at once, so the model is built with tied_head = false
// (parameters().config says so) and the head weight starts from its own N(0, init_std) draw.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <memory>

#include "core/kalman/config.hpp"
#include "core/lm/gpt_config.hpp"
#include "core/lm/learners/language_learner.hpp"

namespace kwm::lm {

struct RlsHeadConfig {
  double initial_variance = 1.0;  // prior A0 = I / initial_variance
  double forgetting = 1.0;        // lambda in (0, 1]
  double delta = 1e-2;            // > 0: keeps G positive definite
  // pbar <- ema pbar + (1 - ema) batch mean; 0: the batch mean alone. Default 0.999: on the tiny
  // corpus the batch mean (0) left the model worse than untrained (validation 5.91 nats against
  // 5.55) and 0.999 gave 2.93 (docs/lm-results.md, "Tuning").
  double probability_ema = 0.999;
  kwm::JitterConfig jitter;
  void validate() const;  // throws std::invalid_argument naming learner.<key>
};

// Keys: type (rls-head), initial_variance, forgetting, delta, probability_ema,
// jitter{initial_relative, growth, max_retries}.
RlsHeadConfig parse_rls_head_config(const YAML::Node& learner);
YAML::Node to_yaml(const RlsHeadConfig& config);

class RlsHeadLearner final : public LanguageLearner {
 public:
  RlsHeadLearner(const RlsHeadConfig& config, const GptConfig& model, std::uint64_t seed,
                 LmCollectives collectives);
  RlsHeadLearner(const RlsHeadLearner&) = delete;
  RlsHeadLearner& operator=(const RlsHeadLearner&) = delete;

  std::string name() const override { return "rls-head"; }
  std::string derivative_label() const override {
    return "reverse-free (linear-in-parameters head)";
  }
  StepReport step(const TokenBatch& batch) override;
  const GptParameters<double>& parameters() const override { return parameters_; }
  // Keys: "parameters" (flatten() order, rank 0), "head.information" (A, (d+1) x (d+1), the
  // owner), "head.mean_probability" (pbar, vocab x 1, rank 0); counters "steps", "skips",
  // "jitter_retries".
  LearnerState state() const override;
  void restore(const LearnerState& state) override;
  void shift_head_bias(const Eigen::VectorXd& delta) override {
    add_to_head_bias(parameters_, delta, name());
  }

  int head_owner() const { return owner_; }
  std::int64_t skips() const { return skips_; }

 private:
  RlsHeadConfig config_;
  LmCollectives collectives_;
  GptParameters<double> parameters_;
  int owner_ = 0;
  Eigen::MatrixXd information_;       // A, held by the owner only
  Eigen::VectorXd mean_probability_;  // pbar (replicated); empty before the first step
  std::int64_t steps_ = 0;
  std::int64_t skips_ = 0;
  std::int64_t jitter_retries_ = 0;
};

std::unique_ptr<LanguageLearner> make_rls_head_learner(const YAML::Node& learner,
                                                       const GptConfig& model, std::uint64_t seed,
                                                       LmCollectives collectives);

}  // namespace kwm::lm
