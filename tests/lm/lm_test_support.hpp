// Shared pieces of the GPT tests: a small model with every tensor randomised (so gains, biases
// and the head all matter), a random batch, and the model's forward pass rebuilt from the kernels
// with an additive offset on one linear layer's output (to difference the loss in z).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "core/lm/attention.hpp"
#include "core/lm/cross_entropy.hpp"
#include "core/lm/embedding.hpp"
#include "core/lm/gelu.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/layer_norm.hpp"
#include "core/lm/linear.hpp"

namespace kwm::lm::testing {

inline GptConfig small_config(bool tied, bool head_bias = true) {
  GptConfig c;
  c.vocab_size = 23;
  c.context = 8;
  c.d_model = 8;
  c.n_layers = 2;
  c.n_heads = 2;
  c.d_mlp = 12;
  c.tied_head = tied;
  c.head_bias = head_bias;
  return c;
}

// Every entry N(0, scale^2), layer-norm gains 1 + N(0, scale^2): far from the GPT-2 init so
// that no term of the derivative is hidden by a zero bias or a unit gain.
inline GptParameters<double> random_parameters(const GptConfig& config, std::uint64_t seed,
                                               double scale = 0.4) {
  auto p = GptParameters<double>::zeros(config);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  for (auto& t : p.tensors()) {
    const bool gain = t.name.size() > 5 && t.name.substr(t.name.size() - 5) == ".gain";
    for (Eigen::Index i = 0; i < t.size(); ++i) t.data[i] = (gain ? 1.0 : 0.0) + normal(rng);
  }
  return p;
}

inline TokenBatch random_batch(const GptConfig& config, int batch, int length, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int32_t> token(0, config.vocab_size - 1);
  TokenBatch b;
  b.batch = batch;
  b.length = length;
  for (int n = 0; n < batch * length; ++n) {
    b.inputs.push_back(token(rng));
    b.targets.push_back(token(rng));
  }
  return b;
}

inline double total_nll(const GptParameters<double>& p, const TokenBatch& batch) {
  return cross_entropy(forward(p, batch, nullptr), batch.targets).total_nll;
}

// forward() composed again from the public kernels, adding `offset` to the output of linear
// layer `site` (linear_layers() order, head last) before it is used.
inline Matrix<double> forward_with_offset(const GptParameters<double>& p, const TokenBatch& batch,
                                          std::size_t site, const Matrix<double>& offset) {
  const GptConfig& c = p.config;
  const auto linear = [&](std::size_t index, const Matrix<double>& w, const Vector<double>& b,
                          const Matrix<double>& a) {
    Matrix<double> z = affine(w, b, a);
    if (index == site) z += offset;
    return z;
  };
  Matrix<double> x =
      embed(p.token_embedding, p.position_embedding, batch.inputs, batch.batch, batch.length);
  for (int i = 0; i < c.n_layers; ++i) {
    const auto& blk = p.blocks[static_cast<std::size_t>(i)];
    const Matrix<double> h1 = layer_norm(blk.ln1, x, c.layer_norm_eps, nullptr);
    const Matrix<double> qkv =
        linear(linear_index(i, BlockLinear::qkv), blk.qkv.weight, blk.qkv.bias, h1);
    const Matrix<double> ctx = causal_attention(qkv, batch.batch, batch.length, c.n_heads, nullptr);
    x +=
        linear(linear_index(i, BlockLinear::attn_out), blk.attn_out.weight, blk.attn_out.bias, ctx);
    const Matrix<double> h2 = layer_norm(blk.ln2, x, c.layer_norm_eps, nullptr);
    const Matrix<double> f =
        linear(linear_index(i, BlockLinear::fc), blk.fc.weight, blk.fc.bias, h2);
    x += linear(linear_index(i, BlockLinear::proj), blk.proj.weight, blk.proj.bias, gelu(f));
  }
  const Matrix<double> hf = layer_norm(p.ln_f, x, c.layer_norm_eps, nullptr);
  return linear(head_linear_index(c), c.tied_head ? p.token_embedding : p.head.weight, p.head.bias,
                hf);
}

}  // namespace kwm::lm::testing
