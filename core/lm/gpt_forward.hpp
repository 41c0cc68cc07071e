// The GPT forward pass: embeddings, L pre-LN transformer blocks, final layer norm, head. The
// cache keeps what the transposed-Jacobian pass (gpt_backward.hpp) needs.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/lm/attention.hpp"
#include "core/lm/gpt_parameters.hpp"
#include "core/lm/layer_norm.hpp"
#include "core/lm/token_batch.hpp"

namespace kwm::lm {

// a (d_in x N) and z = W a + b (d_out x N).
template <typename T>
struct LinearActivations {
  Matrix<T> input;
  Matrix<T> output;
};

template <typename T>
struct BlockCache {
  LayerNormCache<T> ln1;
  AttentionCache<T> attention;
  LayerNormCache<T> ln2;
};

template <typename T>
struct ForwardCache {
  int batch = 0;
  int length = 0;
  std::vector<std::int32_t> tokens;  // the batch's inputs
  // In linear_layers() order; for a tied head the head's entry is still present as the last
  // entry (input = final LN output, output = logits). Index with linear_index().
  std::vector<LinearActivations<T>> linear;
  std::vector<BlockCache<T>> blocks;
  LayerNormCache<T> ln_f;
};

// Throws std::invalid_argument on a shape mismatch, a token id outside [0, vocab) or
// length > context.
void validate_batch(const GptConfig& config, const TokenBatch& batch);

// logits: vocab x N, column n = b*T + t. cache may be nullptr (inference only; the cache type
// is not deduced, so a plain nullptr works).
template <typename T>
Matrix<T> forward(const GptParameters<T>& parameters, const TokenBatch& batch,
                  std::type_identity_t<ForwardCache<T>>* cache);

// The residual stream after the last block (d x N): forward() without ln_f and the head, for
// learners that evaluate many heads on one body. The cache, when given, holds the body's entries
// (ln_f and the head's stay empty).
template <typename T>
Matrix<T> forward_body(const GptParameters<T>& parameters, const TokenBatch& batch,
                       std::type_identity_t<ForwardCache<T>>* cache);

}  // namespace kwm::lm
