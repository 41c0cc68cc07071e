// Autoregressive sampling from a GPT.
#pragma once

#include <cstdint>
#include <vector>

#include "core/lm/gpt_parameters.hpp"

namespace kwm::lm {

// Returns prompt followed by new_tokens sampled tokens. temperature 0 = greedy (argmax, ties to
// the lowest id); otherwise softmax(logits / temperature) sampled with a seeded std::mt19937_64
// (reproducible for a seed). When the sequence is longer than config.context, the model sees
// only the last config.context tokens (the window slides). Throws std::invalid_argument on an
// empty prompt, a token outside [0, vocab), new_tokens < 0 or temperature < 0.
std::vector<std::int32_t> generate(const GptParameters<double>& parameters,
                                   std::vector<std::int32_t> prompt, int new_tokens,
                                   double temperature, std::uint64_t seed);

}  // namespace kwm::lm
