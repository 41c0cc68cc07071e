// kwm-linearized: "linearized (transposed Jacobians)" (ALGORITHMS.md sections 3, 4, 5(c), 7).
// One forward pass gives the output innovation e = onehot - p; transpose_jacobian() carries it
// down the layers (the arithmetic of reverse mode); then every block of linearized_blocks.hpp
// takes an information-form Kalman step toward its corrected output. No loss gradient is
// followed, no learning rate, no optimizer moments: the step sizes are the Kalman gains, set by
// the prior (initial_variance), the accumulated information, forgetting and the noise r.
//
// Observation noise r per block: `fixed` (r = noise.variance for every block) or `adaptive`
// (r_b = max(noise.floor, EMA over steps of the block's mean squared per-token output
// innovation, weight noise.ema on the old value; the first step sets it): a Sage-Husa-style
// estimate that treats the block's corrected output as a pseudo-observation whose noise matches
// its innovation energy. The energies are all-reduced, so r is identical on every rank.
//
// For nonlinear layers the step is one batched Gauss-Newton/EKF step at the current linearisation
// point per block, with the blocks decoupled (block-diagonal covariance): exact only for a block
// that is linear in its parameters given the others (the head; with fixed features).
//
// Safeguards: jittered Cholesky, then the block is skipped (counted); NaN/Inf in the logits
// skips the whole step, in a block's statistics skips that block; forgetting toward the prior
// keeps every covariance below initial_variance (ceiling, trace cap) and, with lambda < 1, the
// information bounded (floor). Every skip is decided on all-reduced values or through
// LmCollectives::any, so all ranks issue the same collectives.
//
// Distributed: each rank learns from its own share of the batch; all blocks' raw statistics
// travel in ONE all-reduce (symmetric ones as packed triangles); each block is owned by one rank
// (LPT on d_in^3); owners solve and broadcast their blocks' new parameters.
//
// The head is always untied (tied_head is set to false, as in rls-head).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/kalman/config.hpp"
#include "core/lm/gpt_config.hpp"
#include "core/lm/learners/language_learner.hpp"
#include "core/lm/learners/linearized_blocks.hpp"

namespace kwm::lm {

enum class LinearizedNoise { fixed, adaptive };

struct KwmLinearizedConfig {
  double initial_variance = 1.0;  // prior covariance v I of every block
  double forgetting = 1.0;        // lambda in (0, 1]
  LinearizedNoise noise_mode = LinearizedNoise::fixed;
  double noise_variance = 1.0;     // fixed r (> 0), and the floor's fallback
  double noise_ema = 0.99;         // adaptive: weight of the old energy, [0, 1)
  double noise_floor = 1e-8;       // adaptive: lower bound of r, > 0
  bool update_embeddings = true;   // token and position embeddings
  bool update_layer_norms = true;  // LN gains and biases
  kwm::JitterConfig jitter;
  void validate() const;  // throws std::invalid_argument naming learner.<key>
};

// Keys: type (kwm-linearized), initial_variance, forgetting, noise{mode: fixed|adaptive,
// variance, ema, floor}, update_embeddings, update_layer_norms,
// jitter{initial_relative, growth, max_retries}.
KwmLinearizedConfig parse_kwm_linearized_config(const YAML::Node& learner);
YAML::Node to_yaml(const KwmLinearizedConfig& config);

class KwmLinearizedLearner final : public LanguageLearner {
 public:
  KwmLinearizedLearner(const KwmLinearizedConfig& config, const GptConfig& model,
                       std::uint64_t seed, LmCollectives collectives);
  KwmLinearizedLearner(const KwmLinearizedLearner&) = delete;
  KwmLinearizedLearner& operator=(const KwmLinearizedLearner&) = delete;

  std::string name() const override { return "kwm-linearized"; }
  std::string derivative_label() const override { return "linearized (transposed Jacobians)"; }
  StepReport step(const TokenBatch& batch) override;
  const GptParameters<double>& parameters() const override { return parameters_; }
  // Keys: "parameters" (flatten() order, rank 0), "noise_energy" (blocks x 1, the adaptive EMA;
  // rank 0), "<block>.information" for each block this rank owns (linear: L, (d_in+1)^2;
  // embeddings: diagonal, rows x 1; layer norms: d x 3 = (l11, l12, l22) per coordinate). Block
  // names: token_embedding, position_embedding, blocks.<i>.{ln1,qkv,attn_out,ln2,fc,proj}, ln_f,
  // head. Counters: steps, skips (whole steps), block_skips, jitter_retries.
  LearnerState state() const override;
  void restore(const LearnerState& state) override;
  void shift_head_bias(const Eigen::VectorXd& delta) override {
    add_to_head_bias(parameters_, delta, name());
  }

  const std::vector<std::string>& block_names() const { return names_; }
  const std::vector<int>& owners() const { return owners_; }
  std::int64_t skips() const { return skips_; }
  std::int64_t block_skips() const { return block_skips_; }
  // The observation noise r each block used in the last step (replicated).
  const std::vector<double>& noise() const { return noise_; }

 private:
  bool active(std::size_t block) const;

  KwmLinearizedConfig config_;
  LmCollectives collectives_;
  GptParameters<double> parameters_;
  std::vector<std::unique_ptr<KalmanBlock>> blocks_;
  std::vector<std::string> names_;
  std::vector<int> owners_;
  std::vector<double> energy_;  // adaptive EMA per block; NaN before the first step
  std::vector<double> noise_;
  std::int64_t steps_ = 0;
  std::int64_t skips_ = 0;
  std::int64_t block_skips_ = 0;
  std::int64_t jitter_retries_ = 0;
};

std::unique_ptr<LanguageLearner> make_kwm_linearized_learner(const YAML::Node& learner,
                                                             const GptConfig& model,
                                                             std::uint64_t seed,
                                                             LmCollectives collectives);

}  // namespace kwm::lm
