// Subspace selection by tensor name (GptParameters::tensors(), flatten order), the seeded
// random projection and the low-rank adapters.
#include "core/lm/learners/ensemble_subspace.hpp"

#include <cmath>
#include <stdexcept>
#include <utility>

#include "core/lm/gpt_forward.hpp"
#include "core/lm/layer_norm.hpp"
#include "core/lm/learners/ensemble_random.hpp"
#include "core/lm/learners/learner_options.hpp"
#include "core/lm/linear.hpp"

namespace kwm::lm {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Whether tensor `name` belongs to an index subspace.
bool selected(const SubspaceConfig& c, const GptConfig& model, const std::string& name) {
  if (c.kind == SubspaceKind::all) return true;
  // lora without layer norms: ln_f and the blocks' ln1 / ln2 stay at the base.
  if (c.kind == SubspaceKind::lora && !c.layer_norms &&
      (starts_with(name, "ln_f.") || name.find(".ln1.") != std::string::npos ||
       name.find(".ln2.") != std::string::npos))
    return false;
  const bool head = starts_with(name, "ln_f.") || starts_with(name, "head.") ||
                    (model.tied_head && name == "token_embedding");
  if (head) return true;
  if (c.kind == SubspaceKind::last_blocks || c.kind == SubspaceKind::lora) {
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
    check_option_keys(node, key, {"type", "blocks", "dimension", "rank", "seed", "layer_norms"});
    if (!node["type"])
      fail_option(key + ".type", "is required (all, head, last_blocks, random, lora)");
    type = read_option<std::string>(node, "type", key, "");
    if (type == "lora") c.blocks = 0;  // head only unless blocks is given
    c.blocks = read_option(node, "blocks", key, c.blocks);
    c.dimension = read_option<Eigen::Index>(node, "dimension", key, c.dimension);
    c.rank = read_option<Eigen::Index>(node, "rank", key, c.rank);
    c.seed = read_option<std::uint64_t>(node, "seed", key, c.seed);
    c.layer_norms = read_option<bool>(node, "layer_norms", key, c.layer_norms);
    if (node["blocks"] && type != "last_blocks" && type != "lora")
      fail_option(key + ".blocks",
                  "only applies to types last_blocks and lora; type is '" + type + "'");
    if (node["dimension"] && type != "random")
      fail_option(key + ".dimension", "only applies to type random; type is '" + type + "'");
    if (node["rank"] && type != "lora")
      fail_option(key + ".rank", "only applies to type lora; type is '" + type + "'");
    if (node["layer_norms"] && type != "lora")
      fail_option(key + ".layer_norms", "only applies to type lora; type is '" + type + "'");
    if (node["seed"] && type != "random" && type != "lora")
      fail_option(key + ".seed", "only applies to types random and lora; type is '" + type + "'");
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
  } else if (type == "lora") {
    c.kind = SubspaceKind::lora;
    if (c.rank < 1) fail_option(key + ".rank", "must be >= 1; got " + std::to_string(c.rank));
    if (c.blocks < 0) fail_option(key + ".blocks", "must be >= 0; got " + std::to_string(c.blocks));
  } else {
    fail_option(
        node.IsScalar() ? key : key + ".type",
        "must be one of all, head, last_blocks, random, lora; got '" + type + "'" +
            (node.IsScalar() && (type == "last_blocks" || type == "random" || type == "lora")
                 ? " (as a mapping with its parameters)"
                 : ""));
  }
  if (node.IsScalar() && c.kind != SubspaceKind::all && c.kind != SubspaceKind::head)
    fail_option(key, "'" + type + "' needs a mapping: {type: " + type +
                         (type == "random" ? ", dimension: d, seed: s}"
                          : type == "lora" ? ", rank: r, blocks: k, seed: s}"
                                           : ", blocks: k}"));
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
    case SubspaceKind::lora:
      return "lora(" + std::to_string(c.rank) + ", " + std::to_string(c.blocks) + ", " +
             std::to_string(c.seed) + (c.layer_norms ? ")" : ", fixed layer norms)");
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
  if (config.kind == SubspaceKind::lora &&
      (config.blocks < 0 || config.blocks > base.config.n_layers || config.rank < 1))
    throw std::invalid_argument(
        "subspace lora: blocks must be in [0, n_layers = " + std::to_string(base.config.n_layers) +
        "] and rank >= 1; got " + std::to_string(config.blocks) + " and " +
        std::to_string(config.rank));
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
  const bool lora = config.kind == SubspaceKind::lora;
  body_fixed_ =
      !base.config.tied_head && (config.kind == SubspaceKind::head || (lora && config.blocks == 0));
  head_input_fixed_ = body_fixed_ && lora && !config.layer_norms;
  Eigen::Index offset = 0, count = 0;
  for (const auto& t : base.tensors()) {
    if (lora && t.cols > 1 && selected(config, base.config, t.name)) {
      adapters_.push_back({offset, t.rows, t.cols, 0});  // `at` is set once the vectors are counted
    } else if (selected(config, base.config, t.name)) {
      if (t.name == "head.bias") head_bias_at_ = count;
      if (!ranges_.empty() && ranges_.back().first + ranges_.back().second == offset)
        ranges_.back().second += t.size();
      else
        ranges_.emplace_back(offset, t.size());
      count += t.size();
    }
    offset += t.size();
  }
  // lora: u = [the adapted set's vectors | A_1, B_1 | A_2, B_2 | ...].
  const Eigen::Index r = config.rank;
  Eigen::Index adapter_size = 0;
  for (auto& a : adapters_) {
    a.at = count + adapter_size;
    adapter_size += r * (a.cols + a.rows);
  }
  origin_ = Eigen::VectorXd::Zero(count + adapter_size);
  Eigen::Index at = 0;
  for (const auto& [start, size] : ranges_) {
    origin_.segment(at, size) = base_.segment(start, size);
    at += size;
  }
  // A ~ N(0, 1/r), B = 0: theta(origin) = base, and B deviations of std s move W with std s.
  for (std::size_t i = 0; i < adapters_.size(); ++i)
    origin_.segment(adapters_[i].at, r * adapters_[i].cols) =
        normal_vector(stream_seed(config.seed, RandomPurpose::lora_adapter, 0, i),
                      r * adapters_[i].cols, 1.0 / std::sqrt(static_cast<double>(r)));
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

void ParameterSubspace::shift_base(const Eigen::VectorXd& delta, Eigen::MatrixXd& points) {
  if (delta.size() != base_.size() || points.rows() != dimension())
    throw std::invalid_argument("subspace: shift of " + std::to_string(delta.size()) +
                                " parameters and points of dimension " +
                                std::to_string(points.rows()) + " for a model of " +
                                std::to_string(base_.size()) + " in a subspace of " +
                                std::to_string(dimension()));
  base_ += delta;
  if (config_.kind == SubspaceKind::random) return;  // theta = base + A u: the base carries it
  Eigen::Index at = 0;
  for (const auto& [start, size] : ranges_) {
    points.middleRows(at, size).colwise() += delta.segment(start, size);
    origin_.segment(at, size) += delta.segment(start, size);
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
    const Eigen::Index r = config_.rank;
    for (const auto& a : adapters_) {
      const Eigen::Map<const Eigen::MatrixXd> down(u.data() + a.at, r, a.cols);             // A
      const Eigen::Map<const Eigen::MatrixXd> up(u.data() + a.at + r * a.cols, a.rows, r);  // B
      Eigen::Map<Eigen::MatrixXd>(flat.data() + a.offset, a.rows, a.cols).noalias() += up * down;
    }
  }
  out.unflatten(flat);
}

Matrix<double> ParameterSubspace::base_head_product(const Matrix<double>& h) const {
  if (!head_input_fixed_)
    throw std::logic_error("subspace " + describe(config_) + ": the head input is not fixed");
  const Adapter& a = adapters_.front();  // the head weight, V x d
  return Eigen::Map<const Eigen::MatrixXd>(base_.data() + a.offset, a.rows, a.cols) * h;
}

Matrix<double> ParameterSubspace::low_rank_head_logits(const Eigen::VectorXd& u,
                                                       const Matrix<double>& h,
                                                       const Matrix<double>& base_product) const {
  if (!head_input_fixed_)
    throw std::logic_error("subspace " + describe(config_) + ": the head input is not fixed");
  if (u.size() != dimension())
    throw std::invalid_argument("subspace: coordinates have size " + std::to_string(u.size()) +
                                "; the subspace has dimension " + std::to_string(dimension()));
  const Adapter& a = adapters_.front();
  const Eigen::Index r = config_.rank;
  const Eigen::Map<const Eigen::MatrixXd> down(u.data() + a.at, r, a.cols);             // A
  const Eigen::Map<const Eigen::MatrixXd> up(u.data() + a.at + r * a.cols, a.rows, r);  // B
  Matrix<double> logits = base_product;
  logits.noalias() += up * (down * h);
  if (head_bias_at_ >= 0) logits.colwise() += u.segment(head_bias_at_, a.rows);
  return logits;
}

Matrix<double> head_logits(const GptParameters<double>& p, const Matrix<double>& normalized) {
  Matrix<double> h = (normalized.array().colwise() * p.ln_f.gain.array()).matrix();
  h.colwise() += p.ln_f.bias;
  return affine(p.config.tied_head ? p.token_embedding : p.head.weight, p.head.bias, h);
}

Matrix<double> body_normalized(const GptParameters<double>& p, const TokenBatch& batch) {
  LayerNormCache<double> normalized;
  layer_norm(p.ln_f, forward_body(p, batch, nullptr), p.config.layer_norm_eps, &normalized);
  return std::move(normalized.normalized);
}

}  // namespace kwm::lm
