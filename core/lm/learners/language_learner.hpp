// LanguageLearner: what the LM trainer drives, one batch of token sequences at a time. Every
// learner names how it obtains the observation Jacobian (ALGORITHMS.md section 5): reverse-free
// (linear-in-parameters head, ensemble, zeroth-order) or linearized (transposed layer Jacobians,
// the same arithmetic as reverse mode) or backprop (the AdamW baseline).
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>

#include "core/lm/gpt_parameters.hpp"
#include "core/lm/token_batch.hpp"

namespace kwm::lm {

// Collectives a learner uses when launched on several ranks; the distributed layer fills them in
// from a Communicator. Empty functions: a single process. Every rank calls them in the same order.
struct LmCollectives {
  int rank = 0;
  int ranks = 1;
  std::function<void(double* data, std::size_t count)> all_reduce_sum;
  std::function<void(double* data, std::size_t count, int root)> broadcast;
  // OR of a flag over ranks: every skip decision goes through it so all ranks stay in step.
  std::function<bool(bool flag)> any;

  bool single_process() const { return ranks == 1; }
};

// What one step did. Losses are mean negative log-likelihoods in nats per token of the batch this
// rank saw, measured before the update (the prequential loss).
struct StepReport {
  double nll_before = 0.0;
  std::int64_t tokens = 0;                      // tokens learned from (this rank)
  std::int64_t forward_passes = 0;              // full-model forward passes spent (this rank)
  std::int64_t transposed_jacobian_passes = 0;  // backward-type passes spent (this rank)
  bool skipped = false;                         // update refused (NaN/Inf, failed Cholesky)
};

// Everything a learner needs to continue bit for bit: named fp64 tensors and integer counters.
// Keys are global (independent of the rank count); a sharded learner writes the blocks it owns
// and reads back the ones it owns after a restart on any number of ranks.
struct LearnerState {
  std::map<std::string, Eigen::MatrixXd> tensors;
  std::map<std::string, std::int64_t> counters;
};

class LanguageLearner {
 public:
  virtual ~LanguageLearner() = default;
  // Config name: "rls-head", "kwm-linearized", "kwm-ensemble", "adamw", "mezo".
  virtual std::string name() const = 0;
  // e.g. "reverse-free (linear-in-parameters head)", "linearized (transposed Jacobians)",
  // "backprop (baseline)"; logged, written to metrics and documented.
  virtual std::string derivative_label() const = 0;
  // Learns from this rank's share of a batch; returns the loss measured before the update.
  virtual StepReport step(const TokenBatch& batch) = 0;
  // The current parameter mean (what evaluation and generation use).
  virtual const GptParameters<double>& parameters() const = 0;
  // Checkpoint state: `state()` holds what this rank owns; `restore` takes the union of what
  // every rank wrote and keeps what this rank now owns. Throws std::invalid_argument naming the
  // missing or mis-shaped key.
  virtual LearnerState state() const = 0;
  virtual void restore(const LearnerState& state) = 0;
  // Adds `delta` (vocab entries) to the head bias of the current parameters, wherever the learner
  // keeps them (ensemble members, MeZO coordinates, the subspace base): the start of a run with
  // `train.head_bias_init: unigram`. Throws std::invalid_argument when the model has no head bias
  // or delta has the wrong size.
  virtual void shift_head_bias(const Eigen::VectorXd& delta) = 0;
};

// parameters.head.bias += delta, or std::invalid_argument naming `learner`.
inline void add_to_head_bias(GptParameters<double>& parameters, const Eigen::VectorXd& delta,
                             const std::string& learner) {
  if (parameters.head.bias.size() == 0)
    throw std::invalid_argument(learner + ": the model has no head bias (model.head_bias: false)");
  if (delta.size() != parameters.head.bias.size())
    throw std::invalid_argument(learner + ": head-bias shift has " + std::to_string(delta.size()) +
                                " entries; the vocabulary has " +
                                std::to_string(parameters.head.bias.size()));
  parameters.head.bias += delta;
}

}  // namespace kwm::lm
