// Host-side helpers shared by the device passes: the target check every pass makes before it
// queues work, and the size conversion for cudaMemcpy byte counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/lm/gpt_config.hpp"
#include "core/lm/token_batch.hpp"

namespace kwm::lm::cuda {

// Every target id inside the vocabulary, one per input token; std::invalid_argument naming the
// first that is not (device kernels would read out of bounds instead of failing).
inline void check_targets(const GptConfig& config, const TokenBatch& batch) {
  if (static_cast<std::int64_t>(batch.targets.size()) != batch.tokens()) {
    throw std::invalid_argument(
        "token batch has " + std::to_string(batch.targets.size()) +
        " targets; expected batch * length = " + std::to_string(batch.tokens()));
  }
  for (std::size_t n = 0; n < batch.targets.size(); ++n) {
    if (batch.targets[n] < 0 || batch.targets[n] >= config.vocab_size) {
      throw std::invalid_argument("target token id " + std::to_string(batch.targets[n]) +
                                  " at position " + std::to_string(n) +
                                  " is outside the vocabulary [0, " +
                                  std::to_string(config.vocab_size) + ")");
    }
  }
}

inline std::size_t as_size(std::int64_t n) { return static_cast<std::size_t>(n); }

}  // namespace kwm::lm::cuda
