// The affine layer z = W a + b on a d_in x N activation block, and its transposed Jacobian.
#pragma once

#include "core/lm/gpt_parameters.hpp"

namespace kwm::lm {

// z = W a + b 1^T (bias may be empty: no bias).
template <typename T>
Matrix<T> affine(const Matrix<T>& weight, const Vector<T>& bias, const Matrix<T>& input);

// Given g = J_z^T e (d_out x N): weight_out += g a^T, bias_out += g 1 (skipped when bias_out is
// empty); returns J_a^T e = W^T g.
template <typename T>
Matrix<T> affine_transpose(const Matrix<T>& weight, const Matrix<T>& input, const Matrix<T>& g,
                           Matrix<T>& weight_out, Vector<T>& bias_out);

}  // namespace kwm::lm
