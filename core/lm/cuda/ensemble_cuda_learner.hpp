// kwm-ensemble as a LanguageLearner with its forward passes on one CUDA device per rank:
// EnsembleCuda (fp32 predictions, fp64 ensemble on the host) behind the interface kwm train drives
// (learner.device: cuda). state()/restore() use exactly EnsembleLearner's keys and shapes, and the
// ensemble is the CPU learner's fp64 matrix, so checkpoints cross devices as they are. Several
// ranks split the members as the CPU learner does (one GPU each, chosen by the launcher before the
// learner is built); the J x m predictions are summed through the host collectives.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/lm/cuda/ensemble_cuda.hpp"
#include "core/lm/cuda/lazy_host_parameters.hpp"
#include "core/lm/gpt_config.hpp"
#include "core/lm/learners/ensemble_config.hpp"
#include "core/lm/learners/language_learner.hpp"

namespace kwm::lm::cuda {

class EnsembleCudaLearner final : public LanguageLearner {
 public:
  // The same start as EnsembleLearner(config, model, seed, collectives). Throws
  // std::invalid_argument on a bad config, a subspace other than head / {type: lora, blocks: 0}
  // or a tied head; std::runtime_error when no CUDA device is visible.
  EnsembleCudaLearner(const EnsembleConfig& config, const GptConfig& model, std::uint64_t seed,
                      LmCollectives collectives = {});

  std::string name() const override { return "kwm-ensemble"; }
  std::string derivative_label() const override {
    return "reverse-free (ensemble Kalman inversion, forward passes only), fp32 on CUDA";
  }
  StepReport step(const TokenBatch& batch) override;
  // theta(mean of the members), computed on the host after a step only when asked for.
  const GptParameters<double>& parameters() const override;
  // As EnsembleLearner::state(): counters step, members, dimension, seed; tensors member.<j>
  // (dimension x 1) for this rank's members, base (P x 1) on rank 0.
  LearnerState state() const override;
  void restore(const LearnerState& state) override;
  void shift_head_bias(const Eigen::VectorXd& delta) override;

  const EnsembleCuda& device() const { return *device_; }

 private:
  std::unique_ptr<EnsembleCuda> device_;
  LazyHostParameters mean_;  // theta(mean), computed by parameters() after a change
};

// learner.type must be kwm-ensemble (its keys as parse_ensemble_config reads them).
std::unique_ptr<LanguageLearner> make_ensemble_cuda_learner(const YAML::Node& learner,
                                                            const GptConfig& model,
                                                            std::uint64_t seed,
                                                            const LmCollectives& collectives);

}  // namespace kwm::lm::cuda
