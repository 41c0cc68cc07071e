// YAML <-> GptConfig with every key checked and named in errors; the parameter count.
#include "core/lm/gpt_config.hpp"

#include <cmath>
#include <set>
#include <stdexcept>
#include <string>

namespace kwm::lm {
namespace {

[[noreturn]] void fail(const std::string& key, const std::string& what) {
  throw std::invalid_argument("config key model." + key + " " + what);
}

template <typename V>
V read(const YAML::Node& node, const std::string& key, V fallback) {
  if (!node[key]) return fallback;
  try {
    return node[key].as<V>();
  } catch (const YAML::Exception&) {
    fail(key, "has the wrong type; got '" + YAML::Dump(node[key]) + "'");
  }
}

void require_positive(const std::string& key, double value) {
  if (!(value > 0.0)) fail(key, "must be positive; got " + std::to_string(value));
}

}  // namespace

void validate(const GptConfig& c) {
  const auto positive = [](const std::string& key, int value) {
    if (value <= 0) fail(key, "must be a positive integer; got " + std::to_string(value));
  };
  positive("vocab_size", c.vocab_size);
  positive("context", c.context);
  positive("d_model", c.d_model);
  positive("n_layers", c.n_layers);
  positive("n_heads", c.n_heads);
  if (c.d_mlp < 0)
    fail("d_mlp", "must be >= 0 (0 means 4 * d_model); got " + std::to_string(c.d_mlp));
  if (c.d_model % c.n_heads != 0) {
    fail("d_model", "must be divisible by model.n_heads; got d_model " + std::to_string(c.d_model) +
                        " and n_heads " + std::to_string(c.n_heads));
  }
  require_positive("layer_norm_eps", c.layer_norm_eps);
  if (!(c.init_std >= 0.0) || !std::isfinite(c.init_std)) {
    fail("init_std", "must be finite and >= 0; got " + std::to_string(c.init_std));
  }
}

GptConfig parse_gpt_config(const YAML::Node& model) {
  GptConfig c;
  if (!model || model.IsNull()) return c;
  if (!model.IsMap()) throw std::invalid_argument("config key model must be a mapping");
  const std::set<std::string> allowed = {"vocab_size",     "context", "d_model",   "n_layers",
                                         "n_heads",        "d_mlp",   "tied_head", "head_bias",
                                         "layer_norm_eps", "init_std"};
  for (const auto& entry : model) {
    const auto key = entry.first.as<std::string>();
    if (!allowed.contains(key)) {
      std::string known;
      for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
      fail(key, "is not known; expected one of: " + known);
    }
  }
  c.vocab_size = read(model, "vocab_size", c.vocab_size);
  c.context = read(model, "context", c.context);
  c.d_model = read(model, "d_model", c.d_model);
  c.n_layers = read(model, "n_layers", c.n_layers);
  c.n_heads = read(model, "n_heads", c.n_heads);
  c.d_mlp = read(model, "d_mlp", c.d_mlp);
  c.tied_head = read(model, "tied_head", c.tied_head);
  c.head_bias = read(model, "head_bias", c.head_bias);
  c.layer_norm_eps = read(model, "layer_norm_eps", c.layer_norm_eps);
  c.init_std = read(model, "init_std", c.init_std);
  validate(c);
  return c;
}

YAML::Node to_yaml(const GptConfig& c) {
  YAML::Node node;
  node["vocab_size"] = c.vocab_size;
  node["context"] = c.context;
  node["d_model"] = c.d_model;
  node["n_layers"] = c.n_layers;
  node["n_heads"] = c.n_heads;
  node["d_mlp"] = c.d_mlp;
  node["tied_head"] = c.tied_head;
  node["head_bias"] = c.head_bias;
  node["layer_norm_eps"] = c.layer_norm_eps;
  node["init_std"] = c.init_std;
  return node;
}

std::int64_t parameter_count(const GptConfig& c) {
  const std::int64_t v = c.vocab_size, ctx = c.context, d = c.d_model, m = c.mlp_width();
  const std::int64_t layer_norm = 2 * d;
  const std::int64_t block =
      layer_norm + (3 * d * d + 3 * d) + (d * d + d) + layer_norm + (m * d + m) + (d * m + d);
  return v * d + ctx * d + c.n_layers * block + layer_norm + (c.tied_head ? 0 : v * d) +
         (c.head_bias ? v : 0);
}

}  // namespace kwm::lm
