// The parameter subspace a forward-only learner (kwm-ensemble, mezo) moves in. The learner keeps
// coordinates u (n of them) and evaluates the model at theta(u):
//   all             u = every parameter (theta = u)
//   head            u = ln_f and the head (bias; weight when untied, the token embedding when
//                   tied, because that is the head weight); everything else stays at the base
//   last_blocks k   u = the last k transformer blocks plus the head set above
//   random d, seed  theta = base + A u, A (P x d) with i.i.d. N(0, 1/d) entries from the seed, so
//                   u ~ N(0, s^2 I) perturbs each parameter with variance s^2 as in `all`
// Low-rank adapters are not implemented.
#pragma once

#include <yaml-cpp/yaml.h>

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/lm/gpt_parameters.hpp"

namespace kwm::lm {

enum class SubspaceKind { all, head, last_blocks, random };

struct SubspaceConfig {
  SubspaceKind kind = SubspaceKind::all;
  int blocks = 1;               // last_blocks: k in [1, n_layers]
  Eigen::Index dimension = 64;  // random: d >= 1
  std::uint64_t seed = 1;       // random: seed of A
};

// `node` is a scalar (all | head) or a mapping {type: all | head | last_blocks | random,
// blocks: k, dimension: d, seed: s}; absent -> all. Errors name `key` (e.g. learner.subspace).
SubspaceConfig parse_subspace(const YAML::Node& node, const std::string& key);
std::string describe(const SubspaceConfig& config);  // "all", "last_blocks(2)", "random(64, 7)"

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

  // theta(u) written into `out`, which must have the model's shapes.
  void embed(const Eigen::VectorXd& u, GptParameters<double>& out) const;

 private:
  SubspaceConfig config_;
  Eigen::VectorXd base_;
  std::vector<std::pair<Eigen::Index, Eigen::Index>> ranges_;  // (offset, size) in flatten order
  Eigen::MatrixXd projection_;                                 // random only: P x d
  Eigen::VectorXd origin_;
};

}  // namespace kwm::lm
