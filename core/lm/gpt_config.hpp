// GptConfig: the shape of a decoder-only GPT (vocabulary, context, width, depth, heads), its YAML
// form and the parameter count it implies.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>

namespace kwm::lm {

struct GptConfig {
  int vocab_size = 256;
  int context = 64;
  int d_model = 64;
  int n_layers = 2;
  int n_heads = 4;
  int d_mlp = 0;          // 0 -> 4 * d_model
  bool tied_head = true;  // head weight = token_embedding
  bool head_bias = true;  // logits = W h + b; GPT-2 itself has no head bias (head_bias: false)
  double layer_norm_eps = 1e-5;
  double init_std = 0.02;

  int mlp_width() const { return d_mlp == 0 ? 4 * d_model : d_mlp; }
  int head_dim() const { return d_model / n_heads; }
};

// Keys: vocab_size, context, d_model, n_layers, n_heads, d_mlp, tied_head, head_bias,
// layer_norm_eps, init_std (all optional). Unknown key or bad value -> std::invalid_argument
// naming the key.
GptConfig parse_gpt_config(const YAML::Node& model);
YAML::Node to_yaml(const GptConfig& config);
// Throws std::invalid_argument naming the offending field (used by parse_gpt_config and init).
void validate(const GptConfig& config);

std::int64_t parameter_count(const GptConfig& config);

}  // namespace kwm::lm
