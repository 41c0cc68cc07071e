// Window selection and the all-reduced loss sums of held-out scoring.
#include "launch/lm/lm_evaluation.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "core/lm/cross_entropy.hpp"
#include "core/lm/gpt_forward.hpp"

namespace kwm::launch {
namespace {

constexpr int kWindowsPerForward = 16;  // bounds the activation memory of one forward pass

}  // namespace

LmScore score_tokens(Communicator& world, const lm::GptParameters<double>& parameters,
                     const std::vector<std::int32_t>& tokens, int length, std::int64_t max_tokens,
                     double bytes_per_token) {
  const auto n = static_cast<std::int64_t>(tokens.size());
  if (n < 2) throw std::invalid_argument("a held-out split needs at least 2 tokens");
  const int T = static_cast<int>(std::min<std::int64_t>(length, n - 1));
  const std::int64_t available = (n - 1) / T;
  std::int64_t windows = available;
  if (max_tokens > 0) windows = std::clamp<std::int64_t>((max_tokens + T - 1) / T, 1, available);
  // Window k starts at floor(k * available / windows) * T: evenly spaced, never overlapping.
  std::vector<std::int64_t> starts;
  for (std::int64_t k = world.rank(); k < windows; k += world.size())
    starts.push_back((k * available / windows) * T);

  double sums[2] = {0.0, 0.0};  // total nll, tokens
  for (std::size_t at = 0; at < starts.size(); at += kWindowsPerForward) {
    const auto count = std::min<std::size_t>(kWindowsPerForward, starts.size() - at);
    lm::TokenBatch batch;
    batch.batch = static_cast<int>(count);
    batch.length = T;
    for (std::size_t w = 0; w < count; ++w) {
      const auto begin = tokens.begin() + starts[at + w];
      batch.inputs.insert(batch.inputs.end(), begin, begin + T);
      batch.targets.insert(batch.targets.end(), begin + 1, begin + T + 1);
    }
    const auto logits = lm::forward<double>(parameters, batch, nullptr);
    sums[0] += lm::cross_entropy<double>(logits, batch.targets).total_nll;
    sums[1] += static_cast<double>(batch.targets.size());
  }
  world.all_reduce_sum(sums, 2);
  LmScore score;
  score.tokens = static_cast<std::int64_t>(sums[1]);
  score.nll = sums[0] / sums[1];
  score.bits_per_byte = score.nll / std::numbers::ln2 / bytes_per_token;
  score.perplexity = std::exp(score.nll);
  return score;
}

}  // namespace kwm::launch
