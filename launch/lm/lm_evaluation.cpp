// Window selection and the all-reduced loss sums of held-out scoring; the CPU fp64 evaluator.
#include "launch/lm/lm_evaluation.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>

#include "core/lm/cross_entropy.hpp"
#include "core/lm/gpt_forward.hpp"

namespace kwm::launch {
namespace {

constexpr int kCpuWindowsPerForward = 16;  // bounds the activation memory of one forward pass

}  // namespace

LmScore score_windows(Communicator& world, const std::vector<std::int32_t>& tokens, int length,
                      std::int64_t max_tokens, double bytes_per_token, int windows_per_batch,
                      const WindowBatchNll& batch_nll) {
  const auto n = static_cast<std::int64_t>(tokens.size());
  if (n < 2) throw std::invalid_argument("a held-out split needs at least 2 tokens");
  if (length < 1 || windows_per_batch < 1)
    throw std::invalid_argument(
        "held-out scoring needs a window length and windows per batch of "
        "at least 1; got " +
        std::to_string(length) + " and " + std::to_string(windows_per_batch));
  const int T = static_cast<int>(std::min<std::int64_t>(length, n - 1));
  const std::int64_t available = (n - 1) / T;
  std::int64_t windows = available;
  if (max_tokens > 0) windows = std::clamp<std::int64_t>((max_tokens + T - 1) / T, 1, available);
  // Window k starts at floor(k * available / windows) * T: evenly spaced, never overlapping.
  std::vector<std::int64_t> starts;
  for (std::int64_t k = world.rank(); k < windows; k += world.size())
    starts.push_back((k * available / windows) * T);

  double sums[2] = {0.0, 0.0};  // total nll, tokens
  const auto per_batch = static_cast<std::size_t>(windows_per_batch);
  for (std::size_t at = 0; at < starts.size(); at += per_batch) {
    const auto count = std::min<std::size_t>(per_batch, starts.size() - at);
    lm::TokenBatch batch;
    batch.batch = static_cast<int>(count);
    batch.length = T;
    for (std::size_t w = 0; w < count; ++w) {
      const auto begin = tokens.begin() + starts[at + w];
      batch.inputs.insert(batch.inputs.end(), begin, begin + T);
      batch.targets.insert(batch.targets.end(), begin + 1, begin + T + 1);
    }
    sums[0] += batch_nll(batch);
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

LmScore score_tokens(Communicator& world, const lm::GptParameters<double>& parameters,
                     const std::vector<std::int32_t>& tokens, int length, std::int64_t max_tokens,
                     double bytes_per_token) {
  return score_windows(world, tokens, length, max_tokens, bytes_per_token, kCpuWindowsPerForward,
                       [&parameters](const lm::TokenBatch& batch) {
                         const auto logits = lm::forward<double>(parameters, batch, nullptr);
                         return lm::cross_entropy<double>(logits, batch.targets).total_nll;
                       });
}

}  // namespace kwm::launch
