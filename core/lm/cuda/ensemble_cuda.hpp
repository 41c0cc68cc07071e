// EnsembleCuda: one kwm-ensemble step (core/lm/learners/ensemble_learner) with its forward passes
// on one CUDA device in fp32, for the subspaces whose members share the transformer body
// (ParameterSubspace::body_fixed: `head`, or `lora` with blocks 0, on an untied head). Per step:
//   forecast           inflation and process noise on the host, in fp64, from the CPU learner's
//                      streams (ensemble_random.hpp; columns drawn in parallel, same numbers)
//   body               one GptForwardCuda pass on the union of the ranks' batches, its final
//                      layer norm set to gain 1, bias 0, so that it leaves xhat (d x N)
//   heads              per point (the members this rank runs, then the mean): h = g (.) xhat + b,
//                      W = the point's head (`head`) or W0 + B A (`lora`, merged on the device),
//                      logits = W h (+ c) by one strided-batched SGEMM over a group of points
//   observables        sqrt(2 NLL_n) or p(target_n) per token and member into an m x J matrix
//                      (double), the mean's per-token NLL beside it; one copy to the host
//   analysis           predictions summed over ranks (host collectives), the J x J weights by
//                      ensemble_analysis and Theta += (Theta - mean) W, both on the host in fp64
// The ensemble itself stays on the host in fp64, exactly as the CPU learner keeps it: the noise is
// drawn there anyway (n x J per step), the shipped subspace is small (lora rank 4 on the head:
// 1,664 coordinates on the tiny model, 22,016 at configs/lm_gpu_10m.yaml's shapes), and then the
// only difference from the CPU learner is the fp32 rounding of the predictions.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/lm/cuda/device_buffer.hpp"
#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/learners/ensemble_config.hpp"
#include "core/lm/learners/ensemble_kalman_update.hpp"
#include "core/lm/learners/ensemble_subspace.hpp"
#include "core/lm/learners/language_learner.hpp"

namespace kwm::lm::cuda {

// Where a point's final layer norm and head sit in its subspace coordinates u.
struct EnsembleHeadLayout {
  bool low_rank = false;           // lora: W = W0 + B A; otherwise W is in u
  Eigen::Index gain_at = 0;        // ln_f.gain (d)
  Eigen::Index bias_at = 0;        // ln_f.bias (d)
  Eigen::Index weight_at = 0;      // head: W (vocab x d); lora: A (rank x d), then B (vocab x rank)
  Eigen::Index head_bias_at = -1;  // head.bias (vocab), -1 without one
  Eigen::Index rank = 0;
  Eigen::Index dimension = 0;
};

// The layout of `config` on an untied model, checked against ParameterSubspace::embed on a probe
// point. Throws std::invalid_argument for a subspace whose members do not share the body (the
// message names the subspace).
EnsembleHeadLayout ensemble_head_layout(const SubspaceConfig& config,
                                        const GptParameters<double>& base);

class EnsembleCuda {
 public:
  // Budget of the per-group workspace (merged heads, member layer norms, logits): points are
  // evaluated in groups that fit it (at least one point per group).
  static constexpr std::size_t kDefaultWorkspaceBytes = std::size_t{2} << 30;

  // The CPU learner's start: theta_0 = GptParameters::init(model, seed), members theta_0 +
  // N(0, initial_std^2) in the subspace. Throws std::invalid_argument on a bad config, a subspace
  // other than head / lora with blocks 0, a tied head, or bad collectives; std::runtime_error
  // without a CUDA device. Uses the calling thread's current device.
  EnsembleCuda(const EnsembleConfig& config, const GptConfig& model, std::uint64_t seed,
               LmCollectives collectives = {},
               std::size_t workspace_bytes = kDefaultWorkspaceBytes);

  // Throws std::invalid_argument on a bad batch (validate_batch's and check_targets' messages).
  StepReport step(const TokenBatch& batch);

  // The device evaluation alone: per-token observables (config's kind) of `points` (n x K) and the
  // per-token NLL of `mean` (n), both on `batch`. Returns m x (K + 1): the K observables, then the
  // mean's NLL.
  Eigen::MatrixXd predict(const TokenBatch& batch, const Eigen::MatrixXd& points,
                          const Eigen::VectorXd& mean);

  const EnsembleConfig& config() const { return config_; }
  const ParameterSubspace& subspace() const { return subspace_; }
  const Eigen::MatrixXd& members() const { return members_; }  // n x J, fp64
  const EnsembleAnalysis& last_analysis() const { return analysis_; }
  const LmCollectives& collectives() const { return collectives_; }
  int first_member() const { return first_; }
  int last_member() const { return last_; }
  std::int64_t steps() const { return steps_; }
  std::uint64_t seed() const { return seed_; }
  int group_size() const { return group_; }  // points evaluated per batched head GEMM

  // theta(mean of the members), fp64 on the host.
  GptParameters<double> mean_parameters() const;

  // A checkpoint: base (P), members (n x J), step counter and seed; shapes checked by the caller.
  void restore(const Eigen::VectorXd& base, Eigen::MatrixXd members, std::int64_t steps,
               std::uint64_t seed);
  // ParameterSubspace::shift_base on the base and every member (shift_head_bias).
  void shift_base(const Eigen::VectorXd& delta);

 private:
  void upload_base();
  void forecast();
  void reserve(std::int64_t tokens, std::int64_t points);

  EnsembleConfig config_;
  GptConfig model_;
  std::uint64_t seed_;
  LmCollectives collectives_;
  ParameterSubspace subspace_;
  EnsembleHeadLayout layout_;
  Eigen::MatrixXd members_;
  EnsembleAnalysis analysis_;
  std::int64_t steps_ = 0;
  int first_ = 0, last_ = 0;
  GptForwardCuda body_;  // the body at the base; ln_f gain 1, bias 0; head W0
  std::size_t workspace_bytes_;
  int group_ = 1;
  std::vector<float> staged_points_;  // host copy of the points being uploaded
  DeviceBuffer<float> points_;        // n x (K + 1)
  DeviceBuffer<float> weights_;       // lora: merged heads, vocab x d per point of a group
  DeviceBuffer<float> normed_;        // d x N per point of a group
  DeviceBuffer<float> logits_;        // vocab x N per point of a group
  DeviceBuffer<double> observables_;  // N x (K + 1)
};

}  // namespace kwm::lm::cuda
