// The parameter subspace a forward-only learner (kwm-ensemble, mezo) moves in. The learner keeps
// coordinates u (n of them) and evaluates the model at theta(u):
//   all             u = every parameter (theta = u)
//   head            u = ln_f and the head (bias; weight when untied, the token embedding when
//                   tied, because that is the head weight); everything else stays at the base
//   last_blocks k   u = the last k transformer blocks plus the head set above
//   random d, seed  theta = base + A u, A (P x d) with i.i.d. N(0, 1/d) entries from the seed, so
//                   u ~ N(0, s^2 I) perturbs each parameter with variance s^2 as in `all`
//   lora r, k, seed low-rank adapters (Hu et al. 2021) on the head weight (the token embedding
//                   when tied) and on the four weight matrices of the last k blocks (k = 0: head
//                   only): W = W_base + B A with A (r x in) and B (out x r) in u; the vectors of
//                   the adapted set (ln_f, head.bias, and the layer norms and biases of the k
//                   blocks) move in full, as in `head` / `last_blocks`. Origin: B = 0 (theta =
//                   base) and A ~ N(0, 1/r) from the seed, so a deviation of std s in B moves
//                   each W entry with std s, as an index subspace would. The adapter is kept
//                   explicitly in u (checkpointed with the learner); theta(u) is the merged
//                   model, which is what model.h5 and evaluation see.
#pragma once

#include <yaml-cpp/yaml.h>

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/lm/gpt_parameters.hpp"
#include "core/lm/token_batch.hpp"

namespace kwm::lm {

enum class SubspaceKind { all, head, last_blocks, random, lora };

struct SubspaceConfig {
  SubspaceKind kind = SubspaceKind::all;
  int blocks = 1;               // last_blocks: k in [1, n_layers]; lora: k in [0, n_layers]
  Eigen::Index dimension = 64;  // random: d >= 1
  Eigen::Index rank = 4;        // lora: r >= 1
  std::uint64_t seed = 1;       // random, lora: seed of A
  bool layer_norms = true;      // lora: whether ln_f and the k blocks' layer norms move
};

// `node` is a scalar (all | head) or a mapping {type: all | head | last_blocks | random | lora,
// blocks: k, dimension: d, rank: r, seed: s, layer_norms: true | false}; absent -> all. For lora,
// blocks defaults to 0 and layer_norms to true.
// Errors name `key` (e.g. learner.subspace).
SubspaceConfig parse_subspace(const YAML::Node& node, const std::string& key);
// "all", "last_blocks(2)", "random(64, 7)", "lora(4, 0, 1)" (rank, blocks, seed; "lora(4, 0, 1,
// fixed layer norms)" with layer_norms false)
std::string describe(const SubspaceConfig& config);

class ParameterSubspace {
 public:
  // Throws std::invalid_argument when the subspace does not fit the model (k > n_layers, ...).
  ParameterSubspace(const SubspaceConfig& config, const GptParameters<double>& base);

  Eigen::Index dimension() const { return origin_.size(); }
  // Coordinates of the base point (its selected entries; zero for a random subspace).
  const Eigen::VectorXd& origin() const { return origin_; }
  // The flattened base parameters (fixed entries outside the subspace).
  const Eigen::VectorXd& base() const { return base_; }
  // Replaces the base (checkpoint restore); throws std::invalid_argument on a size mismatch.
  void set_base(const Eigen::VectorXd& flat);

  // Whether every theta(u) shares the base's transformer body (embeddings and blocks): head, or
  // lora with blocks 0, on an untied head (a tied head's weight is the token embedding). Then a
  // learner may run the body once per batch and only the final layer norm and head per point.
  bool body_fixed() const { return body_fixed_; }

  // Whether, beyond that, every point's head input is the base's (lora on the head alone with
  // layer_norms false: ln_f stays at the base) and its head is W_0 + B A plus its own bias. Then
  // a point's logits are W_0 h + B (A h) + b(u) from one shared product W_0 h, r (d + V)
  // multiply-adds a token instead of V d (low_rank_head_logits).
  bool head_input_fixed() const { return head_input_fixed_; }

  // With head_input_fixed(): the logits of theta(u) from the base's head input h (d x N, the
  // final layer norm's output) and base_product = W_0 h (V x N). Equals head_logits of theta(u)
  // up to rounding (tested). Throws std::logic_error otherwise.
  Matrix<double> low_rank_head_logits(const Eigen::VectorXd& u, const Matrix<double>& h,
                                      const Matrix<double>& base_product) const;
  // With head_input_fixed(): W_0 h, the product every point shares.
  Matrix<double> base_head_product(const Matrix<double>& h) const;

  // Moves every point by the flat parameter shift `delta`: the base, and the coordinates (the
  // columns of `points`, and the origin) of the entries the subspace selects, so theta(u) + delta
  // is what theta(u') gives after the shift. Throws std::invalid_argument on a size mismatch.
  void shift_base(const Eigen::VectorXd& delta, Eigen::MatrixXd& points);

  // The runs of flattened parameters that u holds entry for entry, as (offset, size) in flatten
  // order; u starts with them, in this order (all, head, last_blocks: u is exactly these; lora:
  // the adapted set's vectors, then the adapters; random: none).
  const std::vector<std::pair<Eigen::Index, Eigen::Index>>& index_ranges() const { return ranges_; }

  // theta(u) written into `out`, which must have the model's shapes.
  void embed(const Eigen::VectorXd& u, GptParameters<double>& out) const;

 private:
  // lora: one adapted matrix, rows x cols at `offset` in the flattened parameters; its A
  // (rank x cols) then B (rows x rank) start at `at` in u.
  struct Adapter {
    Eigen::Index offset, rows, cols, at;
  };

  SubspaceConfig config_;
  std::vector<Adapter> adapters_;
  Eigen::VectorXd base_;
  std::vector<std::pair<Eigen::Index, Eigen::Index>> ranges_;  // (offset, size) in flatten order
  Eigen::MatrixXd projection_;                                 // random only: P x d
  Eigen::VectorXd origin_;
  bool body_fixed_ = false;
  bool head_input_fixed_ = false;
  Eigen::Index head_bias_at_ = -1;  // where u holds the head bias (-1: not held, no bias or random)
};

// Logits of parameters p from the normalised input of the final layer norm (ForwardCache
// ln_f.normalized, d x N): head(ln_f(x)) without the body, for subspaces that leave the body at
// the base (ParameterSubspace::body_fixed), so that one body pass serves every point of the
// subspace (kwm-ensemble's members, mezo's two perturbations). Equals forward(p, ...) up to
// rounding.
Matrix<double> head_logits(const GptParameters<double>& p, const Matrix<double>& normalized);

// That normalised input for parameters p (d x N): the body and ln_f's normalisation, neither
// ln_f's gain and bias nor the head (the shared pass of mezo's two perturbed points, whose logits
// nothing reads).
Matrix<double> body_normalized(const GptParameters<double>& p, const TokenBatch& batch);

}  // namespace kwm::lm
