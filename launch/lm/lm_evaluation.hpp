// Held-out scoring of a language model: mean next-token loss (nats), bits per byte and
// perplexity over fixed, evenly spaced windows of a token stream, split over ranks.
#pragma once

#include <cstdint>
#include <vector>

#include "core/lm/gpt_parameters.hpp"
#include "distributed/communicator.hpp"

namespace kwm::launch {

struct LmScore {
  double nll = 0.0;            // mean nats per token
  double bits_per_byte = 0.0;  // nll / ln 2 / (bytes per token)
  double perplexity = 0.0;     // exp(nll)
  std::int64_t tokens = 0;     // tokens scored
};

// Scores up to `max_tokens` tokens (0: all) in windows of `length` (each window's first token is
// predicted from itself only, as in training). Windows are evenly spaced over the stream so a
// subset covers the whole book. Collective when world.size() > 1: each rank scores every R-th
// window and the sums are all-reduced. `bytes_per_token` converts to bits per byte.
LmScore score_tokens(Communicator& world, const lm::GptParameters<double>& parameters,
                     const std::vector<std::int32_t>& tokens, int length, std::int64_t max_tokens,
                     double bytes_per_token);

}  // namespace kwm::launch
