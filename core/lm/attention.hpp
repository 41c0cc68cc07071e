// Causal multi-head self-attention core: from the qkv projection (3d x N) to the per-head context
// (d x N), per sequence and head, scaled by 1/sqrt(head_dim), softmax over keys <= query.
#pragma once

#include <type_traits>
#include <vector>

#include "core/lm/gpt_parameters.hpp"

namespace kwm::lm {

template <typename T>
struct AttentionCache {
  // probabilities[b * n_heads + h]: T x T, row = query, column = key, zero above the diagonal.
  std::vector<Matrix<T>> probabilities;
};

template <typename T>
Matrix<T> causal_attention(const Matrix<T>& qkv, int batch, int length, int n_heads,
                           std::type_identity_t<AttentionCache<T>>* cache);

// Given g = J_context^T e (d x N) returns J_qkv^T e (3d x N).
template <typename T>
Matrix<T> causal_attention_transpose(const Matrix<T>& qkv, const AttentionCache<T>& cache,
                                     const Matrix<T>& g, int batch, int length, int n_heads);

}  // namespace kwm::lm
