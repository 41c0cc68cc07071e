// Subspace selection by tensor name (GptParameters::tensors(), flatten order) and the seeded
// random projection.
#include "core/lm/learners/ensemble_subspace.hpp"

#include <cmath>
#include <stdexcept>

#include "core/lm/learners/ensemble_random.hpp"
#include "core/lm/learners/learner_options.hpp"

namespace kwm::lm {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Whether tensor `name` belongs to an index subspace.
bool selected(const SubspaceConfig& c, const GptConfig& model, const std::string& name) {
  if (c.kind == SubspaceKind::all) return true;
  const bool head = starts_with(name, "ln_f.") || starts_with(name, "head.") ||
                    (model.tied_head && name == "token_embedding");
  if (head) return true;
  if (c.kind == SubspaceKind::last_blocks) {
    for (int b = model.n_layers - c.blocks; b < model.n_layers; ++b)
      if (starts_with(name, "blocks." + std::to_string(b) + ".")) return true;
  }
  return false;
}

}  // namespace

SubspaceConfig parse_subspace(const YAML::Node& node, const std::string& key) {
  SubspaceConfig c;
  if (!node) return c;
  std::string type;
  if (node.IsScalar()) {
    type = node.as<std::string>();
  } else {
    check_option_keys(node, key, {"type", "blocks", "dimension", "seed"});
    if (!node["type"]) fail_option(key + ".type", "is required (all, head, last_blocks, random)");
    type = read_option<std::string>(node, "type", key, "");
    c.blocks = read_option(node, "blocks", key, c.blocks);
    c.dimension = read_option<Eigen::Index>(node, "dimension", key, c.dimension);
    c.seed = read_option<std::uint64_t>(node, "seed", key, c.seed);
    const bool has_blocks = static_cast<bool>(node["blocks"]);
    const bool has_random = node["dimension"] || node["seed"];
    if (has_blocks && type != "last_blocks")
      fail_option(key + ".blocks", "only applies to type last_blocks; type is '" + type + "'");
    if (has_random && type != "random")
      fail_option(key + (node["dimension"] ? ".dimension" : ".seed"),
                  "only applies to type random; type is '" + type + "'");
  }
  if (type == "all") {
    c.kind = SubspaceKind::all;
  } else if (type == "head") {
    c.kind = SubspaceKind::head;
  } else if (type == "last_blocks") {
    c.kind = SubspaceKind::last_blocks;
    if (c.blocks < 1) fail_option(key + ".blocks", "must be >= 1; got " + std::to_string(c.blocks));
  } else if (type == "random") {
    c.kind = SubspaceKind::random;
    if (c.dimension < 1)
      fail_option(key + ".dimension", "must be >= 1; got " + std::to_string(c.dimension));
  } else {
    fail_option(node.IsScalar() ? key : key + ".type",
                "must be one of all, head, last_blocks, random; got '" + type + "'" +
                    (node.IsScalar() && (type == "last_blocks" || type == "random")
                         ? " (as a mapping with its parameters)"
                         : ""));
  }
  if (node.IsScalar() && (c.kind == SubspaceKind::last_blocks || c.kind == SubspaceKind::random))
    fail_option(key, "'" + type + "' needs a mapping: {type: " + type +
                         (type == "random" ? ", dimension: d, seed: s}" : ", blocks: k}"));
  return c;
}

std::string describe(const SubspaceConfig& c) {
  switch (c.kind) {
    case SubspaceKind::all:
      return "all";
    case SubspaceKind::head:
      return "head";
    case SubspaceKind::last_blocks:
      return "last_blocks(" + std::to_string(c.blocks) + ")";
    case SubspaceKind::random:
      return "random(" + std::to_string(c.dimension) + ", " + std::to_string(c.seed) + ")";
  }
  return "unknown";
}

ParameterSubspace::ParameterSubspace(const SubspaceConfig& config,
                                     const GptParameters<double>& base)
    : config_(config), base_(base.flatten()) {
  if (config.kind == SubspaceKind::last_blocks &&
      (config.blocks < 1 || config.blocks > base.config.n_layers))
    throw std::invalid_argument("subspace last_blocks: blocks must be in [1, n_layers = " +
                                std::to_string(base.config.n_layers) + "]; got " +
                                std::to_string(config.blocks));
  if (config.kind == SubspaceKind::random) {
    if (config.dimension < 1)
      throw std::invalid_argument("subspace random: dimension must be >= 1");
    // Column k of A from its own stream: A is the same whatever the model's later history.
    projection_.resize(base_.size(), config.dimension);
    const double std = 1.0 / std::sqrt(static_cast<double>(config.dimension));
    for (Eigen::Index k = 0; k < config.dimension; ++k)
      projection_.col(k) = normal_vector(stream_seed(config.seed, RandomPurpose::random_subspace, 0,
                                                     static_cast<std::uint64_t>(k)),
                                         base_.size(), std);
    origin_ = Eigen::VectorXd::Zero(config.dimension);
    return;
  }
  Eigen::Index offset = 0, count = 0;
  for (const auto& t : base.tensors()) {
    if (selected(config, base.config, t.name)) {
      if (!ranges_.empty() && ranges_.back().first + ranges_.back().second == offset)
        ranges_.back().second += t.size();
      else
        ranges_.emplace_back(offset, t.size());
      count += t.size();
    }
    offset += t.size();
  }
  origin_.resize(count);
  Eigen::Index at = 0;
  for (const auto& [start, size] : ranges_) {
    origin_.segment(at, size) = base_.segment(start, size);
    at += size;
  }
}

void ParameterSubspace::set_base(const Eigen::VectorXd& flat) {
  if (flat.size() != base_.size())
    throw std::invalid_argument("subspace: base has " + std::to_string(flat.size()) +
                                " parameters; the model has " + std::to_string(base_.size()));
  base_ = flat;
  if (config_.kind == SubspaceKind::random) return;
  Eigen::Index at = 0;
  for (const auto& [start, size] : ranges_) {
    origin_.segment(at, size) = base_.segment(start, size);
    at += size;
  }
}

void ParameterSubspace::embed(const Eigen::VectorXd& u, GptParameters<double>& out) const {
  if (u.size() != dimension())
    throw std::invalid_argument("subspace: coordinates have size " + std::to_string(u.size()) +
                                "; the subspace has dimension " + std::to_string(dimension()));
  Eigen::VectorXd flat = base_;
  if (config_.kind == SubspaceKind::random) {
    flat.noalias() += projection_ * u;
  } else {
    Eigen::Index at = 0;
    for (const auto& [start, size] : ranges_) {
      flat.segment(start, size) = u.segment(at, size);
      at += size;
    }
  }
  out.unflatten(flat);
}

}  // namespace kwm::lm
