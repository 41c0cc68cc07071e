// rls-head as a LanguageLearner on one CUDA device: RlsHeadCuda (fp32) behind the interface kwm
// train drives (learner.device: cuda). The step runs on the device; the fp64 host parameters
// that evaluation, checkpoints and generation read are synced lazily, and only the head is copied
// back (the body never changes on the device). state()/restore() use exactly RlsHeadLearner's
// keys and shapes on one rank, so a checkpoint written here resumes on the CPU and the other way
// round, to fp32 rounding. One rank only: several are refused with std::invalid_argument.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/lm/cuda/rls_head_cuda.hpp"
#include "core/lm/gpt_config.hpp"
#include "core/lm/learners/language_learner.hpp"
#include "core/lm/learners/rls_head_learner.hpp"

namespace kwm::lm::cuda {

class RlsHeadCudaLearner final : public LanguageLearner {
 public:
  // The same start as RlsHeadLearner(config, model, seed, ...): GptParameters::init of the untied
  // model with this seed, uploaded in fp32. Throws std::invalid_argument for several ranks or an
  // invalid config, std::runtime_error when no CUDA device is visible.
  RlsHeadCudaLearner(const RlsHeadConfig& config, const GptConfig& model, std::uint64_t seed,
                     const LmCollectives& collectives);

  std::string name() const override { return "rls-head"; }
  std::string derivative_label() const override {
    return "reverse-free (linear-in-parameters head), fp32 on CUDA";
  }
  StepReport step(const TokenBatch& batch) override;
  const GptParameters<double>& parameters() const override;
  // Keys as RlsHeadLearner::state() on one rank: parameters, head.information ((d+1) x (d+1)),
  // head.mean_probability (vocab x 1; empty before the first step), counters steps, skips,
  // jitter_retries.
  LearnerState state() const override;
  void restore(const LearnerState& state) override;
  void shift_head_bias(const Eigen::VectorXd& delta) override;

 private:
  std::unique_ptr<RlsHeadCuda> device_;
  mutable GptParameters<double> host_;  // the device values as of the last sync
  mutable bool host_current_ = true;    // false after a step until parameters() syncs the head
};

// learner.type must be rls-head (its keys as parse_rls_head_config reads them).
std::unique_ptr<LanguageLearner> make_rls_head_cuda_learner(const YAML::Node& learner,
                                                            const GptConfig& model,
                                                            std::uint64_t seed,
                                                            const LmCollectives& collectives);

}  // namespace kwm::lm::cuda
