// Layer normalisation over the feature axis of a d x N activation block, and its transposed
// Jacobian.
#pragma once

#include <type_traits>

#include "core/lm/gpt_parameters.hpp"

namespace kwm::lm {

template <typename T>
struct LayerNormCache {
  Matrix<T> normalized;   // xhat = (x - mean) * inverse_std, d x N
  Vector<T> inverse_std;  // 1 / sqrt(var + eps) per column (N)
};

// y = gain (.) xhat + bias, column by column. cache may be nullptr.
template <typename T>
Matrix<T> layer_norm(const LayerNormParams<T>& params, const Matrix<T>& x,
                     std::type_identity_t<T> eps, std::type_identity_t<LayerNormCache<T>>* cache);

// Given g = J_y^T e (d x N): adds J_gain^T e and J_bias^T e into params_out and returns J_x^T e.
template <typename T>
Matrix<T> layer_norm_transpose(const LayerNormParams<T>& params, const LayerNormCache<T>& cache,
                               const Matrix<T>& g, LayerNormParams<T>& params_out);

}  // namespace kwm::lm
