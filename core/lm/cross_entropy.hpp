// Next-token cross entropy of logits (vocab x N) against targets, and the output innovation
// e = onehot(target) - p = -d(total_nll)/d logits that the transposed-Jacobian pass carries down.
#pragma once

#include <cstdint>
#include <vector>

#include "core/lm/gpt_parameters.hpp"

namespace kwm::lm {

template <typename T>
struct CrossEntropy {
  double total_nll = 0.0;   // sum over the N columns, nats
  double mean_nll = 0.0;    // total_nll / N
  Matrix<T> probabilities;  // vocab x N softmax
};

// Numerically stable (max-shifted) log-softmax. Throws std::invalid_argument on a target outside
// [0, vocab) or targets.size() != N.
template <typename T>
CrossEntropy<T> cross_entropy(const Matrix<T>& logits, const std::vector<std::int32_t>& targets);

// e = onehot(target) - p (vocab x N) == -d(total_nll)/d logits.
template <typename T>
Matrix<T> output_innovation(const CrossEntropy<T>& loss, const std::vector<std::int32_t>& targets);

}  // namespace kwm::lm
