// The transposed-Jacobian pass of the GPT: the forward pass read backwards, each kernel's
// transposed Jacobian applied to the innovation carried down from the logits.
#include "core/lm/gpt_backward.hpp"

#include <stdexcept>
#include <string>

#include "core/lm/embedding.hpp"
#include "core/lm/gelu.hpp"
#include "core/lm/linear.hpp"

namespace kwm::lm {
namespace {

// g is J^T e at the block's output (the residual stream); returns J^T e at its input.
template <typename T>
Matrix<T> block_transpose(const TransformerBlock<T>& block, const BlockCache<T>& bc,
                          const ForwardCache<T>& cache, const GptConfig& config, int index,
                          Matrix<T> g, TransformerBlock<T>& out,
                          std::vector<Matrix<T>>& linear_output) {
  const auto& act = [&cache, index](BlockLinear which) -> const LinearActivations<T>& {
    return cache.linear[linear_index(index, which)];
  };
  // x += proj(gelu(fc(ln2 x))): the residual passes g through unchanged.
  linear_output[linear_index(index, BlockLinear::proj)] = g;
  const Matrix<T> g_gelu = affine_transpose(block.proj.weight, act(BlockLinear::proj).input, g,
                                            out.proj.weight, out.proj.bias);
  Matrix<T> g_fc = gelu_transpose(act(BlockLinear::fc).output, g_gelu);
  const Matrix<T> g_h2 = affine_transpose(block.fc.weight, act(BlockLinear::fc).input, g_fc,
                                          out.fc.weight, out.fc.bias);
  linear_output[linear_index(index, BlockLinear::fc)] = std::move(g_fc);
  g += layer_norm_transpose(block.ln2, bc.ln2, g_h2, out.ln2);
  // x += attn_out(attention(qkv(ln1 x)))
  linear_output[linear_index(index, BlockLinear::attn_out)] = g;
  const Matrix<T> g_context =
      affine_transpose(block.attn_out.weight, act(BlockLinear::attn_out).input, g,
                       out.attn_out.weight, out.attn_out.bias);
  Matrix<T> g_qkv =
      causal_attention_transpose(act(BlockLinear::qkv).output, bc.attention, g_context, cache.batch,
                                 cache.length, config.n_heads);
  const Matrix<T> g_h1 = affine_transpose(block.qkv.weight, act(BlockLinear::qkv).input, g_qkv,
                                          out.qkv.weight, out.qkv.bias);
  linear_output[linear_index(index, BlockLinear::qkv)] = std::move(g_qkv);
  g += layer_norm_transpose(block.ln1, bc.ln1, g_h1, out.ln1);
  return g;
}

}  // namespace

template <typename T>
TransposedJacobian<T> transpose_jacobian(const GptParameters<T>& parameters,
                                         const ForwardCache<T>& cache,
                                         const Matrix<T>& output_innovation) {
  const GptConfig& config = parameters.config;
  const auto head = head_linear_index(config);
  if (cache.linear.size() != head + 1 || cache.blocks.size() != parameters.blocks.size()) {
    throw std::invalid_argument("transpose_jacobian: the forward cache does not match the model");
  }
  const Eigen::Index n = static_cast<Eigen::Index>(cache.batch) * cache.length;
  if (output_innovation.rows() != config.vocab_size || output_innovation.cols() != n) {
    throw std::invalid_argument(
        "transpose_jacobian: output innovation is " + std::to_string(output_innovation.rows()) +
        " x " + std::to_string(output_innovation.cols()) +
        "; expected vocab x N = " + std::to_string(config.vocab_size) + " x " + std::to_string(n));
  }
  TransposedJacobian<T> result;
  result.parameters = parameters.zeros_like();
  result.linear_output.resize(head + 1);
  auto& out = result.parameters;

  result.linear_output[head] = output_innovation;
  Matrix<T>& head_weight_out = config.tied_head ? out.token_embedding : out.head.weight;
  const Matrix<T>& head_weight =
      config.tied_head ? parameters.token_embedding : parameters.head.weight;
  const Matrix<T> g_hf = affine_transpose(head_weight, cache.linear[head].input, output_innovation,
                                          head_weight_out, out.head.bias);
  Matrix<T> g = layer_norm_transpose(parameters.ln_f, cache.ln_f, g_hf, out.ln_f);
  for (int i = config.n_layers - 1; i >= 0; --i) {
    const auto b = static_cast<std::size_t>(i);
    g = block_transpose(parameters.blocks[b], cache.blocks[b], cache, config, i, std::move(g),
                        out.blocks[b], result.linear_output);
  }
  embed_transpose(cache.tokens, cache.batch, cache.length, g, out.token_embedding,
                  out.position_embedding);
  return result;
}

template TransposedJacobian<double> transpose_jacobian(const GptParameters<double>&,
                                                       const ForwardCache<double>&,
                                                       const Matrix<double>&);
template TransposedJacobian<float> transpose_jacobian(const GptParameters<float>&,
                                                      const ForwardCache<float>&,
                                                      const Matrix<float>&);

}  // namespace kwm::lm
