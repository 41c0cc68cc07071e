// kwm-ensemble: ensemble Kalman inversion (Kovachki & Stuart 2019) on a GPT, forward passes
// only (ALGORITHMS.md 5(d)). Label: "reverse-free (ensemble Kalman inversion, forward passes
// only)".
//
// Observation (ensemble_config.hpp). Default: token n of the batch contributes one residual,
// r_n(theta) = sqrt(2 NLL_n(theta)), observed at its ideal value 0 with noise variance r. The
// least-squares misfit the update minimises is then 0.5 sum_n r_n^2 / r = total NLL / r: the EKI
// objective is the cross entropy itself, with m = tokens in the batch (one number per token, not
// V). Alternative: the target's probability observed at 1 with its Bernoulli variance.
//
// One step (every draw comes from the learner seed, the step and the member, so all ranks
// draw the same numbers):
//   1. forecast: theta_j <- mean + inflation (theta_j - mean), then theta_j += xi_j with
//      xi_j ~ N(0, q_t^2 I), centered over the members by default (process_noise_mode) so the
//      mean does not random-walk, and q_t annealed when process_noise_halflife > 0;
//   2. each rank runs the forward passes of its members on the union of all ranks' batches;
//      the J x m predictions are summed over ranks (each rank fills its own columns);
//   3. every rank computes the same J x J weights (ensemble_kalman_update.hpp) and applies them
//      to the ensemble, which every rank keeps in full (n x J): only J x m and sizes travel.
// parameters() is theta(mean of the members). nll_before is the mean's loss on this rank's
// share (one more forward pass). With a head-only subspace (body_fixed) that pass runs over the
// whole gathered batch and its body serves every member, which then evaluates only ln_f and the
// head; with lora without layer norms (head_input_fixed) a member is only its rank-r correction
// on one shared head product.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <memory>
#include <string>

#include "core/lm/gpt_config.hpp"
#include "core/lm/learners/ensemble_config.hpp"
#include "core/lm/learners/ensemble_kalman_update.hpp"
#include "core/lm/learners/ensemble_subspace.hpp"
#include "core/lm/learners/language_learner.hpp"

namespace kwm::lm {

class EnsembleLearner final : public LanguageLearner {
 public:
  // theta_0 = GptParameters::init(model, seed); members theta_0 + N(0, initial_std^2) in the
  // subspace. Throws std::invalid_argument on a bad config or collectives.
  EnsembleLearner(const EnsembleConfig& config, const GptConfig& model, std::uint64_t seed,
                  LmCollectives collectives = {});

  std::string name() const override { return "kwm-ensemble"; }
  std::string derivative_label() const override {
    return "reverse-free (ensemble Kalman inversion, forward passes only)";
  }
  StepReport step(const TokenBatch& batch) override;
  const GptParameters<double>& parameters() const override { return mean_; }
  // Counters: step, members, dimension, seed (the uint64 seed's bits). Tensors: member.<j>
  // (dimension x 1) for the members this rank runs, and base (P x 1, the parameters outside the
  // subspace) on rank 0.
  LearnerState state() const override;
  void restore(const LearnerState& state) override;
  void shift_head_bias(const Eigen::VectorXd& delta) override;

  const Eigen::MatrixXd& members() const { return members_; }  // n x J, subspace coordinates
  const EnsembleAnalysis& last_analysis() const { return analysis_; }
  // [first, last) members whose forward passes this rank runs.
  int first_member() const { return first_; }
  int last_member() const { return last_; }

 private:
  void forecast();
  void refresh_mean();

  EnsembleConfig config_;
  std::uint64_t seed_;
  LmCollectives collectives_;
  ParameterSubspace subspace_;
  Eigen::MatrixXd members_;
  GptParameters<double> mean_;
  GptParameters<double> scratch_;  // one member's parameters during its forward pass
  EnsembleAnalysis analysis_;
  std::int64_t steps_ = 0;
  int first_ = 0, last_ = 0;
};

// q_t of step t (1, 2, ...): process_noise / sqrt(1 + t / process_noise_halflife), or constant.
double process_noise_std(const EnsembleConfig& config, std::int64_t step);

// Factory entry (learner_factory.cpp): parses the `learner:` section (type kwm-ensemble) and builds
// it.
std::unique_ptr<LanguageLearner> make_ensemble_learner(const YAML::Node& learner,
                                                       const GptConfig& model, std::uint64_t seed,
                                                       LmCollectives collectives);

}  // namespace kwm::lm
