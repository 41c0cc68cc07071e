// mezo: zeroth-order SPSA with MeZO's memory trick (Malladi et al. 2023), forward passes only
// (ALGORITHMS.md section 10, the baseline for the reverse-free claims). Label: "reverse-free
// (zeroth-order SPSA, forward passes only)". Per step t:
//   z ~ N(0, I) regenerated from the step seed (learner seed, t), never stored across steps;
//                                                   coordinate i is counter_normal(stream, i)
//                                                   (counter_random.hpp), so the CUDA learner
//                                                   draws the same z in parallel;
//   L+ = L(theta + eps z), L- = L(theta - eps z)   (mean NLL, two forward passes);
//   g = (L+ - L-) / (2 eps)                         (projected gradient, a scalar);
//   theta <- theta (1 - lr_t wd) - lr_t g z.
// theta lives in a parameter subspace (default all parameters; see ensemble_subspace.hpp). On R
// ranks the per-rank NLL sums and token counts are all-reduced (three numbers), so every rank
// takes the same step. nll_before is (L+ + L-) / 2 on this rank's share: the loss at theta up to
// O(eps^2), at no extra forward pass.
#pragma once

#include <yaml-cpp/yaml.h>

#include <Eigen/Core>
#include <cstdint>
#include <memory>
#include <string>

#include "core/lm/gpt_config.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/adamw_schedule.hpp"
#include "core/lm/learners/ensemble_subspace.hpp"
#include "core/lm/learners/language_learner.hpp"

namespace kwm::lm {

struct MezoConfig {
  LearningRateSchedule schedule;  // MeZO uses a constant rate; warmup/cosine are available
  double epsilon = 1e-3;          // perturbation scale
  double weight_decay = 0.0;
  SubspaceConfig subspace;

  void validate() const;  // std::invalid_argument naming the key
};

// Keys: type (mezo), learning_rate, schedule, warmup_steps, total_steps, min_learning_rate,
// epsilon, weight_decay, subspace. Unknown key -> std::invalid_argument naming it.
MezoConfig parse_mezo_config(const YAML::Node& learner);

class MezoLearner final : public LanguageLearner {
 public:
  // theta_0 = GptParameters::init(model, seed); directions come from streams of the same seed.
  MezoLearner(const MezoConfig& config, const GptConfig& model, std::uint64_t seed,
              LmCollectives collectives = {});

  std::string name() const override { return "mezo"; }
  std::string derivative_label() const override {
    return "reverse-free (zeroth-order SPSA, forward passes only)";
  }
  StepReport step(const TokenBatch& batch) override;
  const GptParameters<double>& parameters() const override { return parameters_; }
  // write_mezo_state's keys (below).
  LearnerState state() const override;
  void restore(const LearnerState& state) override;
  void shift_head_bias(const Eigen::VectorXd& delta) override;

  // The direction z of step t (t = 1, 2, ...) for a learner seed, dimension n.
  static Eigen::VectorXd direction(std::uint64_t seed, std::int64_t step, Eigen::Index n);
  double last_projected_gradient() const { return projected_gradient_; }
  const Eigen::VectorXd& coordinates() const { return coordinates_; }

 private:
  // Total NLL at theta(u); with `normalized` (body_normalized of the base, for a body_fixed
  // subspace) only ln_f and the head are evaluated.
  double loss_sum(const Eigen::VectorXd& u, const TokenBatch& batch,
                  const Matrix<double>* normalized);

  MezoConfig config_;
  std::uint64_t seed_;
  LmCollectives collectives_;
  ParameterSubspace subspace_;
  Eigen::VectorXd coordinates_;
  GptParameters<double> parameters_;
  GptParameters<double> scratch_;
  double projected_gradient_ = 0.0;
  std::int64_t steps_ = 0;
};

// The checkpointed state both mezo learners (CPU and CUDA) write and read, so a checkpoint crosses
// devices as it is. Counters: step, seed (the uint64 seed's bits). Tensors, on rank 0 only (every
// rank holds the same replicated state): coordinates (n x 1) and base (P x 1).
struct MezoState {
  std::int64_t step = 0;
  std::uint64_t seed = 0;
  Eigen::VectorXd coordinates;
  Eigen::VectorXd base;
};
LearnerState write_mezo_state(std::int64_t step, std::uint64_t seed, const Eigen::VectorXd& u,
                              const Eigen::VectorXd& base, int rank);
// Reads and checks every key (missing or mis-shaped: std::invalid_argument naming it) before the
// caller changes anything, so a bad state loses nothing.
MezoState read_mezo_state(const LearnerState& state, Eigen::Index n, Eigen::Index P);

// Factory entry (learner_factory.cpp): parses the `learner:` section (type mezo) and builds it.
std::unique_ptr<LanguageLearner> make_mezo_learner(const YAML::Node& learner,
                                                   const GptConfig& model, std::uint64_t seed,
                                                   LmCollectives collectives);

}  // namespace kwm::lm
