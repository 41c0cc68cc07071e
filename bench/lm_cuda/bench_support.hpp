// What the GPU language-model benchmarks share: a batch of uniformly random tokens filling the
// context, and the check of a positive integer flag.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>

#include "core/lm/gpt_config.hpp"
#include "core/lm/token_batch.hpp"

namespace kwm::lm::bench {

// `batch` sequences of `config.context` tokens, inputs and targets drawn independently.
inline TokenBatch random_batch(const GptConfig& config, int batch, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int32_t> token(0, config.vocab_size - 1);
  TokenBatch b;
  b.batch = batch;
  b.length = config.context;
  for (std::int64_t n = 0; n < b.tokens(); ++n) {
    b.inputs.push_back(token(rng));
    b.targets.push_back(token(rng));
  }
  return b;
}

// The value of `flag`, in 1 .. 1,000,000, or std::invalid_argument naming the flag.
inline int positive_int(const char* text, const std::string& flag) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value <= 0 || value > 1'000'000) {
    throw std::invalid_argument(flag + " needs a positive integer; got '" + text + "'");
  }
  return static_cast<int>(value);
}

}  // namespace kwm::lm::bench
