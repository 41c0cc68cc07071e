// kwm-linearized as a LanguageLearner on one CUDA device: KwmLinearizedCuda (fp32) behind the
// interface kwm train drives. The step runs on the device; the fp64 host parameters that
// evaluation, checkpoints and generation read are copied back only when parameters() is called
// after a step (lazily, one device wait). state()/restore() use exactly the CPU learner's keys
// and shapes (kwm_linearized_learner.hpp), so a checkpoint written here resumes on the CPU and
// the other way round, to fp32 rounding, also on another number of ranks. Fixed observation
// noise: what KwmLinearizedCuda implements; anything else is refused with std::invalid_argument.
// Several ranks: one GPU each (the caller selects it first), data parallel as the CPU learner.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/lm/cuda/kwm_linearized_cuda.hpp"
#include "core/lm/cuda/lazy_host_parameters.hpp"
#include "core/lm/cuda/tensor_math.hpp"
#include "core/lm/gpt_config.hpp"
#include "core/lm/learners/kwm_linearized_learner.hpp"
#include "core/lm/learners/language_learner.hpp"

namespace kwm::lm::cuda {

class KwmLinearizedCudaLearner final : public LanguageLearner {
 public:
  // The same start as KwmLinearizedLearner(config, model, seed, ...): GptParameters::init of the
  // untied model with this seed. Throws std::invalid_argument for adaptive noise,
  // std::runtime_error when no CUDA device is visible. math: the GPT pass's GEMMs in fp32 or TF32
  // (learner.tensor_math); statistics_math: the same for the linear blocks' x x^T statistics
  // (learner.statistics_math, KwmLinearizedCuda::set_statistics_math says why TF32 keeps them
  // positive semi-definite); the factorisations and solves are fp32 either way.
  KwmLinearizedCudaLearner(const KwmLinearizedConfig& config, const GptConfig& model,
                           std::uint64_t seed, const LmCollectives& collectives,
                           TensorMath math = TensorMath::fp32,
                           TensorMath statistics_math = TensorMath::fp32);

  std::string name() const override { return "kwm-linearized"; }
  std::string derivative_label() const override {
    std::string label = "linearized (transposed Jacobians), fp32 on CUDA";
    if (math_ == TensorMath::tf32) label += ", TF32 GEMMs in the pass";
    if (statistics_math_ == TensorMath::tf32) label += ", TF32 statistics";
    if (statistics_math_ == TensorMath::bf16) label += ", BF16 statistics";
    return label;
  }
  StepReport step(const TokenBatch& batch) override;
  const GptParameters<double>& parameters() const override;
  // Keys as KwmLinearizedLearner::state(): parameters and noise_energy (NaN per block under
  // fixed noise, or what a restored checkpoint held) on rank 0, <block>.information of the blocks
  // this rank owns, and the counters steps, skips, block_skips, jitter_retries.
  LearnerState state() const override;
  void restore(const LearnerState& state) override;
  void shift_head_bias(const Eigen::VectorXd& delta) override;
  // Several ranks: the device sums through `make(stream)` (NCCL) instead of the host.
  void use_device_all_reduce(const std::function<DeviceAllReduce(cudaStream_t)>& make) {
    device_->use_device_all_reduce(make(device_->stream()));
  }
  std::size_t reduced_floats() const { return device_->reduced_floats(); }

 private:
  std::unique_ptr<KwmLinearizedCuda> device_;
  TensorMath math_ = TensorMath::fp32;
  TensorMath statistics_math_ = TensorMath::fp32;
  int rank_ = 0;
  LazyHostParameters host_;  // the device mean, synced by parameters() after a change
  Eigen::VectorXd energy_;   // noise_energy, carried through checkpoints unchanged
};

// learner.type must be kwm-linearized (its keys as parse_kwm_linearized_config reads them), plus
// the optional tensor_math (fp32 | tf32) and statistics_math (fp32 | tf32 | bf16), default fp32;
// anything else throws std::invalid_argument naming the key.
std::unique_ptr<LanguageLearner> make_kwm_linearized_cuda_learner(
    const YAML::Node& learner, const GptConfig& model, std::uint64_t seed,
    const LmCollectives& collectives, const DeviceAllReduceMaker& device_all_reduce = {});

}  // namespace kwm::lm::cuda
