// The transposed-Jacobian pass: carries an output innovation e (vocab x N) down the network by
// transposed layer Jacobians (ALGORITHMS.md 5(c), the arithmetic of reverse mode). With
// e = onehot(target) - p every result is -d(total_nll)/d(that quantity).
#pragma once

#include <vector>

#include "core/lm/gpt_forward.hpp"
#include "core/lm/gpt_parameters.hpp"

namespace kwm::lm {

template <typename T>
struct TransposedJacobian {
  // J_z^T e for each linear layer's output z (d_out x N), linear_layers() order (+ the head's
  // entry, the last one, even when tied: it equals e).
  std::vector<Matrix<T>> linear_output;
  // J_theta^T e for every parameter, same shapes. For each linear layer
  // weight == linear_output * input^T and bias == row sums of linear_output (tied head: the
  // head's share is added into token_embedding).
  GptParameters<T> parameters;
};

template <typename T>
TransposedJacobian<T> transpose_jacobian(const GptParameters<T>& parameters,
                                         const ForwardCache<T>& cache,
                                         const Matrix<T>& output_innovation);

}  // namespace kwm::lm
