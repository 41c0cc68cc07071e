// KwmLinearizedCuda: one kwm-linearized training step (core/lm/learners/kwm_linearized_learner)
// on one CUDA device in fp32, single process. The forward pass, innovation and transposed
// Jacobians come from GptTransposeCuda; then every block of linearized_blocks.hpp takes its
// information-form Kalman step on the device:
//   linear layer  L' = lambda L + (1 - lambda) L0 + (1/r) a a^T (one SGEMM on x, a GEMV for 1),
//                 B = (1/r) a dz^T (the pass's weight transpose, transposed), L' = F F^T
//                 (cusolverDnSpotrf), W += (F^-T F^-1 B)^T
//                 (cusolverDnSpotrs; never an explicit inverse), L <- L' (lower triangle kept);
//   embedding     diagonal information, exact (a kernel);
//   layer norm    one 2 x 2 information block per coordinate (a kernel, fp64 inside).
// Safeguards as the CPU learner: a non-finite NLL skips the step; non-finite statistics or step,
// or a factorisation that fails even after the escalating jitter (core/kalman's
// jittered_cholesky schedule), skip that block (it stays untouched); covariances stay below the
// prior by forgetting toward it. Observation noise: `fixed` only (adaptive throws).
#pragma once

#include <cusolverDn.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/lm/cuda/device_buffer.hpp"
#include "core/lm/cuda/gpt_transpose_cuda.hpp"
#include "core/lm/learners/kwm_linearized_learner.hpp"
#include "core/lm/learners/language_learner.hpp"

namespace kwm::lm::cuda {

class KwmLinearizedCuda {
 public:
  // start: the initial parameters (untied head, as the CPU learner makes them); the prior
  // information is I / initial_variance for every block. Throws std::invalid_argument on a tied
  // head or adaptive noise.
  KwmLinearizedCuda(const KwmLinearizedConfig& config, const GptParameters<double>& start);
  KwmLinearizedCuda(const KwmLinearizedCuda&) = delete;
  KwmLinearizedCuda& operator=(const KwmLinearizedCuda&) = delete;
  ~KwmLinearizedCuda();

  StepReport step(const TokenBatch& batch);

  // Host copies (a device wait each).
  GptParameters<double> parameters();
  // The block's information as the CPU learner's state() holds it (linear: full symmetric
  // (d_in+1)^2; embedding: rows x 1; layer norm: d x 3).
  Eigen::MatrixXd information(std::size_t block);
  // The shape information(block) has (and set_information expects).
  std::pair<Eigen::Index, Eigen::Index> information_shape(std::size_t block) const;
  const std::vector<std::string>& block_names() const { return names_; }

  // Restoring a checkpoint (core/lm/cuda/kwm_linearized_cuda_learner): the parameters (same
  // config, untied head; rounded to fp32), one block's information in information()'s layout
  // (std::invalid_argument on another shape), and the counters.
  void set_parameters(const GptParameters<double>& parameters);
  void set_information(std::size_t block, const Eigen::MatrixXd& information);
  void set_counters(std::int64_t steps, std::int64_t skips, std::int64_t block_skips,
                    std::int64_t jitter_retries);
  // TF32 or fp32 GEMMs in the GPT pass (GptTransposeCuda); the statistics and solves stay fp32.
  void set_tensor_math(TensorMath math) { model_.set_tensor_math(math); }
  std::int64_t steps() const { return steps_; }
  std::int64_t skips() const { return skips_; }
  std::int64_t block_skips() const { return block_skips_; }
  std::int64_t jitter_retries() const { return jitter_retries_; }

 private:
  enum class Kind { token_embedding, position_embedding, layer_norm, linear };
  struct Block {
    std::string name;
    Kind kind = Kind::linear;
    std::size_t site = 0;     // linear: the linear site; layer norm: index into the LN caches
    DeviceLinear layer;       // linear
    DeviceLayerNorm norm;     // layer norm
    std::int64_t inputs = 0;  // linear: d_in (+1 with a bias); LN: d; embedding: rows
    DeviceBuffer<float> information;  // linear: inputs^2 (lower valid); embedding: rows; LN: d x 3
    DeviceBuffer<float> updated;      // candidate information
    DeviceBuffer<float> factor;       // linear: the Cholesky factor
    DeviceBuffer<float> cross;        // linear: (1/r) a dz^T (inputs x d_out)
    DeviceBuffer<float> step;         // linear: the solved step; embedding/LN: candidate values
  };

  bool active(const Block& block) const;
  void queue_linear(Block& block, int* flag, int* info, int* solve_info);
  void queue_embedding(Block& block, int* flag);
  void queue_layer_norm(Block& block, int* flag, int* retries);
  bool retry_with_jitter(Block& block, int* flag, int* info, int* solve_info);
  void apply(Block& block);

  KwmLinearizedConfig config_;
  GptTransposeCuda model_;
  cusolverDnHandle_t solver_ = nullptr;
  std::vector<Block> blocks_;
  std::vector<std::string> names_;
  DeviceBuffer<int> status_;  // see step()
  DeviceBuffer<float> solver_workspace_;
  DeviceBuffer<float> counts_;   // token counts (vocab) then position counts (context)
  DeviceBuffer<float> moments_;  // LN: sum xhat^2 and sum xhat (2 d), then a d x N square
  DeviceBuffer<float> ones_;
  std::int64_t steps_ = 0;
  std::int64_t skips_ = 0;
  std::int64_t block_skips_ = 0;
  std::int64_t jitter_retries_ = 0;
};

}  // namespace kwm::lm::cuda
