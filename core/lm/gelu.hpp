// GELU, tanh approximation (GPT-2; torch gelu(approximate="tanh")), applied entrywise.
#pragma once

#include "core/lm/gpt_parameters.hpp"

namespace kwm::lm {

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
template <typename T>
Matrix<T> gelu(const Matrix<T>& x);

// J^T g = gelu'(x) (.) g (the Jacobian is diagonal).
template <typename T>
Matrix<T> gelu_transpose(const Matrix<T>& x, const Matrix<T>& g);

}  // namespace kwm::lm
