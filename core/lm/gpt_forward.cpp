// Forward pass of the pre-LN GPT: x = embed; per block x += attn_out(attention(qkv(ln1 x))),
// x += proj(gelu(fc(ln2 x))); logits = head(ln_f x).
#include "core/lm/gpt_forward.hpp"

#include <stdexcept>
#include <string>

#include "core/lm/embedding.hpp"
#include "core/lm/gelu.hpp"
#include "core/lm/linear.hpp"

namespace kwm::lm {
namespace {

// z = W a + b, recording (a, z) when asked.
template <typename T>
Matrix<T> apply(const Matrix<T>& weight, const Vector<T>& bias, const Matrix<T>& input,
                LinearActivations<T>* record) {
  Matrix<T> z = affine(weight, bias, input);
  if (record != nullptr) {
    record->input = input;
    record->output = z;
  }
  return z;
}

template <typename T>
void block_forward(const TransformerBlock<T>& block, const GptConfig& config, int batch, int length,
                   Matrix<T>& x, ForwardCache<T>* cache, int index) {
  const auto eps = static_cast<T>(config.layer_norm_eps);
  BlockCache<T>* bc = cache != nullptr ? &cache->blocks[static_cast<std::size_t>(index)] : nullptr;
  const auto record = [cache, index](BlockLinear which) {
    return cache != nullptr ? &cache->linear[linear_index(index, which)] : nullptr;
  };
  const Matrix<T> h1 = layer_norm(block.ln1, x, eps, bc != nullptr ? &bc->ln1 : nullptr);
  const Matrix<T> qkv = apply(block.qkv.weight, block.qkv.bias, h1, record(BlockLinear::qkv));
  const Matrix<T> context = causal_attention(qkv, batch, length, config.n_heads,
                                             bc != nullptr ? &bc->attention : nullptr);
  x += apply(block.attn_out.weight, block.attn_out.bias, context, record(BlockLinear::attn_out));
  const Matrix<T> h2 = layer_norm(block.ln2, x, eps, bc != nullptr ? &bc->ln2 : nullptr);
  const Matrix<T> f = apply(block.fc.weight, block.fc.bias, h2, record(BlockLinear::fc));
  x += apply(block.proj.weight, block.proj.bias, gelu(f), record(BlockLinear::proj));
}

}  // namespace

void validate_batch(const GptConfig& config, const TokenBatch& batch) {
  if (batch.batch <= 0 || batch.length <= 0) {
    throw std::invalid_argument("token batch must have batch > 0 and length > 0; got batch " +
                                std::to_string(batch.batch) + ", length " +
                                std::to_string(batch.length));
  }
  if (batch.length > config.context) {
    throw std::invalid_argument("token batch length " + std::to_string(batch.length) +
                                " exceeds the model context " + std::to_string(config.context));
  }
  if (static_cast<std::int64_t>(batch.inputs.size()) != batch.tokens()) {
    throw std::invalid_argument(
        "token batch has " + std::to_string(batch.inputs.size()) +
        " inputs; expected batch * length = " + std::to_string(batch.tokens()));
  }
  for (std::size_t n = 0; n < batch.inputs.size(); ++n) {
    const auto token = batch.inputs[n];
    if (token < 0 || token >= config.vocab_size) {
      throw std::invalid_argument("token id " + std::to_string(token) + " at position " +
                                  std::to_string(n) + " is outside the vocabulary [0, " +
                                  std::to_string(config.vocab_size) + ")");
    }
  }
}

template <typename T>
Matrix<T> forward_body(const GptParameters<T>& parameters, const TokenBatch& batch,
                       std::type_identity_t<ForwardCache<T>>* cache) {
  const GptConfig& config = parameters.config;
  validate_batch(config, batch);
  if (cache != nullptr) {
    cache->batch = batch.batch;
    cache->length = batch.length;
    cache->tokens = batch.inputs;
    cache->linear.assign(head_linear_index(config) + 1, {});
    cache->blocks.assign(static_cast<std::size_t>(config.n_layers), {});
  }
  Matrix<T> x = embed(parameters.token_embedding, parameters.position_embedding, batch.inputs,
                      batch.batch, batch.length);
  for (int i = 0; i < config.n_layers; ++i) {
    block_forward(parameters.blocks[static_cast<std::size_t>(i)], config, batch.batch, batch.length,
                  x, cache, i);
  }
  return x;
}

template <typename T>
Matrix<T> forward(const GptParameters<T>& parameters, const TokenBatch& batch,
                  std::type_identity_t<ForwardCache<T>>* cache) {
  const GptConfig& config = parameters.config;
  const Matrix<T> hf =
      layer_norm(parameters.ln_f, forward_body(parameters, batch, cache),
                 static_cast<T>(config.layer_norm_eps), cache != nullptr ? &cache->ln_f : nullptr);
  const Matrix<T>& head_weight =
      config.tied_head ? parameters.token_embedding : parameters.head.weight;
  return apply(head_weight, parameters.head.bias, hf,
               cache != nullptr ? &cache->linear[head_linear_index(config)] : nullptr);
}

template Matrix<double> forward_body(const GptParameters<double>&, const TokenBatch&,
                                     ForwardCache<double>*);
template Matrix<float> forward_body(const GptParameters<float>&, const TokenBatch&,
                                    ForwardCache<float>*);
template Matrix<double> forward(const GptParameters<double>&, const TokenBatch&,
                                ForwardCache<double>*);
template Matrix<float> forward(const GptParameters<float>&, const TokenBatch&,
                               ForwardCache<float>*);

}  // namespace kwm::lm
