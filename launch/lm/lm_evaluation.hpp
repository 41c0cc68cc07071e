// Held-out scoring of a language model: mean next-token loss (nats), bits per byte and
// perplexity over fixed, evenly spaced windows of a token stream, split over ranks.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/lm/gpt_parameters.hpp"
#include "core/lm/token_batch.hpp"
#include "distributed/communicator.hpp"

namespace kwm::launch {

struct LmScore {
  double nll = 0.0;            // mean nats per token
  double bits_per_byte = 0.0;  // nll / ln 2 / (bytes per token)
  double perplexity = 0.0;     // exp(nll)
  std::int64_t tokens = 0;     // tokens scored
};

// The summed next-token loss (nats) of one batch of windows (batch.targets all scored).
using WindowBatchNll = std::function<double(const lm::TokenBatch&)>;

// The window selection and rank split of held-out scoring, for any loss evaluator: up to
// `max_tokens` tokens (0: all) in windows of `length` (each window's first token is predicted
// from itself only, as in training). Windows are evenly spaced over the stream so a subset covers
// the whole book. Collective when world.size() > 1: each rank scores every R-th window, at most
// `windows_per_batch` of them per call of `batch_nll` (none on a rank without windows), and the
// sums are all-reduced. `bytes_per_token` converts to bits per byte.
LmScore score_windows(Communicator& world, const std::vector<std::int32_t>& tokens, int length,
                      std::int64_t max_tokens, double bytes_per_token, int windows_per_batch,
                      const WindowBatchNll& batch_nll);

// score_windows on the CPU in fp64: core/lm's forward and cross entropy on `parameters`.
LmScore score_tokens(Communicator& world, const lm::GptParameters<double>& parameters,
                     const std::vector<std::int32_t>& tokens, int length, std::int64_t max_tokens,
                     double bytes_per_token);

}  // namespace kwm::launch
