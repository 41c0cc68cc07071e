// rls-head as a LanguageLearner on CUDA devices: RlsHeadCuda (fp32) behind the interface kwm
// train drives (learner.device: cuda). The step runs on the device; the fp64 host parameters
// that evaluation, checkpoints and generation read are synced lazily, and only the head is copied
// back (the body never changes on the device). state()/restore() use exactly RlsHeadLearner's
// keys and shapes at any rank count, so a checkpoint written here resumes on the CPU and the other
// way round, to fp32 rounding, also on another number of ranks. Several ranks: one GPU each (the
// caller selects it first), data parallel as the CPU learner.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/lm/cuda/lazy_host_parameters.hpp"
#include "core/lm/cuda/rls_head_cuda.hpp"
#include "core/lm/gpt_config.hpp"
#include "core/lm/learners/language_learner.hpp"
#include "core/lm/learners/rls_head_learner.hpp"

namespace kwm::lm::cuda {

class RlsHeadCudaLearner final : public LanguageLearner {
 public:
  // The same start as RlsHeadLearner(config, model, seed, ...): GptParameters::init of the untied
  // model with this seed, uploaded in fp32. Throws std::invalid_argument for an invalid config or
  // inconsistent collectives, std::runtime_error when no CUDA device is visible.
  RlsHeadCudaLearner(const RlsHeadConfig& config, const GptConfig& model, std::uint64_t seed,
                     const LmCollectives& collectives);

  std::string name() const override { return "rls-head"; }
  std::string derivative_label() const override {
    return "reverse-free (linear-in-parameters head), fp32 on CUDA";
  }
  StepReport step(const TokenBatch& batch) override;
  const GptParameters<double>& parameters() const override;
  // Keys as RlsHeadLearner::state(): parameters and head.mean_probability (vocab x 1; empty before
  // the first step) on rank 0, head.information ((d+1) x (d+1)) on the head's owner, counters
  // steps, skips, jitter_retries (equal on every rank).
  LearnerState state() const override;
  void restore(const LearnerState& state) override;
  void shift_head_bias(const Eigen::VectorXd& delta) override;
  // Several ranks: the device sums through `make(stream)` (NCCL) instead of the host.
  void use_device_all_reduce(const DeviceAllReduceMaker& make) {
    device_->use_device_all_reduce(make(device_->stream()));
  }
  std::size_t reduced_floats() const { return device_->reduced_floats(); }

 private:
  std::unique_ptr<RlsHeadCuda> device_;
  int rank_ = 0;
  LazyHostParameters host_;  // the device values; parameters() syncs the head after a step
};

// learner.type must be rls-head (its keys as parse_rls_head_config reads them). Several ranks:
// `device_all_reduce` (NCCL, from launch/) sums the device buffers; empty: the host-staged sums.
std::unique_ptr<LanguageLearner> make_rls_head_cuda_learner(
    const YAML::Node& learner, const GptConfig& model, std::uint64_t seed,
    const LmCollectives& collectives, const DeviceAllReduceMaker& device_all_reduce = {});

}  // namespace kwm::lm::cuda
