// mezo as a LanguageLearner on one CUDA device per rank (learner.device: cuda): MezoLearner's step
// (core/lm/learners/mezo_learner.hpp) with its two forward passes in fp32 on the device. Per step:
//   L+ = L(theta(u + eps z)), L- = L(theta(u - eps z))   (GptForwardCuda::total_nll; each perturbed
//                                                        point is written into the pass's fp32
//                                                        parameters, z drawn there, never stored)
//   g = (L+ - L-) / (2 eps)                              (the sums all-reduced over ranks)
//   u <- u (1 - lr_t wd) - lr_t g z                      (fp64 on the device, z drawn again)
// The coordinates u stay on the device in fp64, so state()/restore() carry exactly the CPU
// learner's keys and values (checkpoints cross devices), and the only difference from the CPU
// learner is the fp32 forward pass (and the last bit of the device's log/sin/cos in z). Index
// subspaces only (all, head, last_blocks): u is a set of runs of the flattened parameters, so a
// perturbed point is one kernel per run; lora and random are refused with a message.
#pragma once

#include <yaml-cpp/yaml.h>

#include <Eigen/Core>
#include <cstdint>
#include <memory>
#include <string>

#include "core/lm/cuda/device_buffer.hpp"
#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/cuda/lazy_host_parameters.hpp"
#include "core/lm/gpt_config.hpp"
#include "core/lm/learners/language_learner.hpp"
#include "core/lm/learners/mezo_learner.hpp"

namespace kwm::lm::cuda {

class MezoCudaLearner final : public LanguageLearner {
 public:
  // The CPU learner's start (theta_0 = GptParameters::init(model, seed), u its subspace origin).
  // Throws std::invalid_argument for a bad config, a subspace other than all / head / last_blocks
  // or bad collectives; std::runtime_error when no CUDA device is visible.
  MezoCudaLearner(const MezoConfig& config, const GptConfig& model, std::uint64_t seed,
                  LmCollectives collectives = {});

  std::string name() const override { return "mezo"; }
  std::string derivative_label() const override {
    return "reverse-free (zeroth-order SPSA, forward passes only), fp32 on CUDA";
  }
  StepReport step(const TokenBatch& batch) override;
  // theta(u), fp64 on the host: u copied back only when read after a change.
  const GptParameters<double>& parameters() const override;
  // write_mezo_state's keys, as MezoLearner (checkpoints cross devices as they are).
  LearnerState state() const override;
  void restore(const LearnerState& state) override;
  void shift_head_bias(const Eigen::VectorXd& delta) override;

  double last_projected_gradient() const { return projected_gradient_; }
  // u, copied back from the device.
  Eigen::VectorXd coordinates() const;
  // z of step t as the device draws it (the conformance test's view).
  Eigen::VectorXd device_direction(std::int64_t step) const;

 private:
  // The public constructor's, given the checked start theta_0 (mezo_start).
  MezoCudaLearner(const MezoConfig& config, const GptConfig& model, std::uint64_t seed,
                  LmCollectives collectives, GptParameters<double> theta0);
  std::uint64_t direction_stream(std::int64_t step) const;
  // Writes theta(u + scale z_t) into the pass's fp32 parameters (the runs u holds).
  void write_point(std::uint64_t stream, double scale);
  // The base (the parameters outside u) into the pass's parameters: after a restore or a head
  // bias shift that reaches outside u (the constructor builds the pass from theta_0 instead).
  void upload_base();
  // u onto the device: after a start, a restore or a shifted head bias.
  void upload_coordinates(const Eigen::VectorXd& u);

  MezoConfig config_;
  GptConfig model_;
  std::uint64_t seed_;
  LmCollectives collectives_;
  ParameterSubspace subspace_;
  std::unique_ptr<GptForwardCuda> pass_;  // its parameters are the point being evaluated
  DeviceBuffer<double> u_;                // the coordinates, n
  LazyHostParameters host_;               // theta(u) on the host, refreshed when read
  double projected_gradient_ = 0.0;
  std::int64_t steps_ = 0;
};

// learner.type must be mezo (its keys as parse_mezo_config reads them).
std::unique_ptr<LanguageLearner> make_mezo_cuda_learner(const YAML::Node& learner,
                                                        const GptConfig& model, std::uint64_t seed,
                                                        const LmCollectives& collectives);

}  // namespace kwm::lm::cuda
