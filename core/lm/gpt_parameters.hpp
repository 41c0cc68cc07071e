// GptParameters<T>: every tensor of a decoder-only GPT (embeddings, pre-LN transformer blocks,
// final layer norm, head), GPT-2 initialisation, and the fixed flatten() order.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <string>
#include <vector>

#include "core/lm/gpt_config.hpp"

namespace kwm::lm {

template <typename T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <typename T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

// z = W a + b, W is d_out x d_in.
template <typename T>
struct Linear {
  Matrix<T> weight;
  Vector<T> bias;
};

template <typename T>
struct LayerNormParams {
  Vector<T> gain;
  Vector<T> bias;
};

template <typename T>
struct TransformerBlock {
  LayerNormParams<T> ln1;
  Linear<T> qkv;       // 3d x d; rows [0,d) query, [d,2d) key, [2d,3d) value; head h = rows h*hd..
  Linear<T> attn_out;  // d x d
  LayerNormParams<T> ln2;
  Linear<T> fc;    // mlp x d
  Linear<T> proj;  // d x mlp
};

// One tensor of the model seen as raw storage (column-major rows x cols; vectors have cols 1).
template <typename T>
struct TensorView {
  std::string name;  // "token_embedding", "blocks.0.qkv.weight", "head.bias", ...
  T* data = nullptr;
  Eigen::Index rows = 0;
  Eigen::Index cols = 0;
  Eigen::Index size() const { return rows * cols; }
};

template <typename T>
struct GptParameters {
  GptConfig config;
  Matrix<T> token_embedding;     // vocab x d (row = token)
  Matrix<T> position_embedding;  // context x d
  std::vector<TransformerBlock<T>> blocks;
  LayerNormParams<T> ln_f;
  // Untied: weight vocab x d. Tied: weight is EMPTY (token_embedding is used). Bias: vocab
  // (empty when config.head_bias is false).
  Linear<T> head;

  // GPT-2 init: N(0, init_std), proj and attn_out weights scaled by 1/sqrt(2 n_layers), biases 0,
  // layer-norm gains 1. Deterministic for a seed (std::mt19937_64, filled in flatten() order).
  static GptParameters init(const GptConfig& config, std::uint64_t seed);
  // Every tensor allocated and zero.
  static GptParameters zeros(const GptConfig& config);

  std::int64_t size() const;  // number of scalars == parameter_count(config)
  // Order (each tensor column-major): token_embedding, position_embedding, then for each block
  // ln1.gain, ln1.bias, qkv.weight, qkv.bias, attn_out.weight, attn_out.bias, ln2.gain,
  // ln2.bias, fc.weight, fc.bias, proj.weight, proj.bias; then ln_f.gain, ln_f.bias,
  // head.weight (untied only), head.bias (when present). Same order as tensors().
  Vector<T> flatten() const;
  void unflatten(const Vector<T>& flat);  // throws std::invalid_argument on size mismatch
  template <typename U>
  GptParameters<U> cast() const;
  GptParameters zeros_like() const;  // same shapes, all zero

  // The tensors in flatten() order (non-empty ones only).
  std::vector<TensorView<T>> tensors();
  std::vector<TensorView<const T>> tensors() const;
};

// The linear layers in a fixed order: blocks.{i}.qkv, blocks.{i}.attn_out, blocks.{i}.fc,
// blocks.{i}.proj for i = 0..L-1, then "head" (only when untied).
template <typename T>
struct LinearSite {
  std::string name;
  Linear<T>* layer;
};
template <typename T>
std::vector<LinearSite<T>> linear_layers(GptParameters<T>& parameters);

// Index of blocks.{block}.{qkv=0, attn_out=1, fc=2, proj=3} in linear_layers() / cache.linear;
// the head is at 4 * n_layers.
enum class BlockLinear { qkv = 0, attn_out = 1, fc = 2, proj = 3 };
inline std::size_t linear_index(int block, BlockLinear which) {
  return static_cast<std::size_t>(4 * block + static_cast<int>(which));
}
inline std::size_t head_linear_index(const GptConfig& config) {
  return static_cast<std::size_t>(4 * config.n_layers);
}

template <typename T>
template <typename U>
GptParameters<U> GptParameters<T>::cast() const {
  const auto linear = [](const Linear<T>& l) {
    return Linear<U>{l.weight.template cast<U>(), l.bias.template cast<U>()};
  };
  const auto norm = [](const LayerNormParams<T>& n) {
    return LayerNormParams<U>{n.gain.template cast<U>(), n.bias.template cast<U>()};
  };
  GptParameters<U> out;
  out.config = config;
  out.token_embedding = token_embedding.template cast<U>();
  out.position_embedding = position_embedding.template cast<U>();
  for (const auto& b : blocks) {
    out.blocks.push_back({norm(b.ln1), linear(b.qkv), linear(b.attn_out), norm(b.ln2), linear(b.fc),
                          linear(b.proj)});
  }
  out.ln_f = norm(ln_f);
  out.head = linear(head);
  return out;
}

extern template struct GptParameters<double>;
extern template struct GptParameters<float>;

}  // namespace kwm::lm
