// The Kalman blocks of the kwm-linearized learner (ALGORITHMS.md sections 4 and 5(c)). Every
// parameter of the GPT belongs to exactly one block; each block turns this rank's share of a batch
// (the forward cache and the transposed-Jacobian innovations) into raw sufficient statistics that
// are summed over ranks, and its owner turns the summed statistics into an information-form
// Kalman step. Kinds:
//   linear layer   shared-row [W b] on [a; 1]: L <- lambda L + (1-lambda) L0 + (1/r) sum a a^T,
//                  W <- W + (1/r) D L^-1, D = sum dz a^T, dz = J_z^T e (the layer's output
//                  innovation).
//   embedding      (token or position) a linear layer on a one-hot input: shared-row with a
//                  DIAGONAL input information (one-hot outer products are diagonal), exact:
//                  l_v <- lambda l_v + (1-lambda)/v0 + count_v / r, E_v <- E_v + (1/r) D_v / l_v,
//                  D = J_E^T e (the transposed-Jacobian product, summed per row).
//   layer norm     y_i = g_i xhat_i + b_i is linear in (g_i, b_i) with input [xhat_i; 1]: one
//                  exact 2 x 2 information block per coordinate i; the output innovation
//                  dy = W_next^T dz_next of the linear layer the norm feeds.
// r is the block's observation noise: fixed, or adaptive (see KwmLinearizedConfig).
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/kalman/config.hpp"
#include "core/lm/gpt_backward.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/shared_row_information.hpp"

namespace kwm::lm {

// What a block reads from one step on this rank.
struct StepView {
  const ForwardCache<double>* cache = nullptr;
  const TransposedJacobian<double>* innovations = nullptr;
};

struct BlockSettings {
  double lambda = 1.0;           // forgetting toward the prior, (0, 1]
  double prior_precision = 1.0;  // 1 / initial_variance
  kwm::JitterConfig jitter;
};

class KalmanBlock {
 public:
  virtual ~KalmanBlock() = default;
  virtual const std::string& name() const = 0;
  // Placement cost (the factor solve: d_in^3 for shared-row blocks).
  virtual double cost() const = 0;
  virtual std::size_t statistics_size() const = 0;
  // Writes this rank's raw sums into out[0, statistics_size()).
  virtual void accumulate(const StepView& view, double* out) const = 0;
  // Mean squared per-token innovation per output coordinate, from the summed statistics.
  virtual double innovation_energy(const double* statistics, double tokens) const = 0;
  // The owner's Kalman step from the summed statistics; touches nothing unless applied.
  virtual SharedRowOutcome update(const double* statistics, double r,
                                  const BlockSettings& settings) = 0;
  // The block's parameter values (for the owner's broadcast) and its information (checkpoints).
  virtual std::size_t mean_size() const = 0;
  virtual void pack_mean(double* out) const = 0;
  virtual void unpack_mean(const double* in) = 0;
  virtual const Eigen::MatrixXd& information() const = 0;
  virtual void set_information(const Eigen::MatrixXd& information) = 0;
  // Allocates the prior information I / v (owners only: non-owners hold none).
  virtual void reset_information(double prior_precision) = 0;
};

// All blocks of `parameters` in a fixed global order: token_embedding, position_embedding, then
// per transformer block ln1, qkv, attn_out, ln2, fc, proj, then ln_f and head. The blocks point
// into `parameters`, which must outlive them and have an untied head.
std::vector<std::unique_ptr<KalmanBlock>> make_linearized_blocks(GptParameters<double>& parameters);

}  // namespace kwm::lm
