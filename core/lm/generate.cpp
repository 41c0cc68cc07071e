// Autoregressive generation: forward the (windowed) sequence, pick the next token from the last
// column's logits, append, repeat.
#include "core/lm/generate.hpp"

#include <random>
#include <stdexcept>
#include <string>

#include "core/lm/gpt_forward.hpp"

namespace kwm::lm {
namespace {

// Uniform in [0, 1) from the top 53 bits: the same sequence on every platform for a seed
// (std::uniform_real_distribution is implementation-defined).
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

std::int32_t pick(const Vector<double>& logits, double temperature, std::mt19937_64& rng) {
  Eigen::Index best = 0;
  const double max = logits.maxCoeff(&best);
  if (temperature == 0.0) return static_cast<std::int32_t>(best);
  const Vector<double> weights = ((logits.array() - max) / temperature).exp().matrix();
  const double u = uniform01(rng) * weights.sum();
  double cumulative = 0.0;
  for (Eigen::Index i = 0; i < weights.size(); ++i) {
    cumulative += weights(i);
    if (u < cumulative) return static_cast<std::int32_t>(i);
  }
  return static_cast<std::int32_t>(weights.size() - 1);  // u rounded onto the total
}

}  // namespace

std::vector<std::int32_t> generate(const GptParameters<double>& parameters,
                                   std::vector<std::int32_t> prompt, int new_tokens,
                                   double temperature, std::uint64_t seed) {
  if (prompt.empty()) throw std::invalid_argument("generate: the prompt is empty");
  if (new_tokens < 0) {
    throw std::invalid_argument("generate: new_tokens must be >= 0; got " +
                                std::to_string(new_tokens));
  }
  if (!(temperature >= 0.0)) {
    throw std::invalid_argument("generate: temperature must be >= 0; got " +
                                std::to_string(temperature));
  }
  std::mt19937_64 rng(seed);
  const auto context = static_cast<std::size_t>(parameters.config.context);
  for (int i = 0; i < new_tokens; ++i) {
    const std::size_t window = std::min(prompt.size(), context);
    TokenBatch batch;
    batch.batch = 1;
    batch.length = static_cast<int>(window);
    batch.inputs.assign(prompt.end() - static_cast<std::ptrdiff_t>(window), prompt.end());
    const Matrix<double> logits = forward(parameters, batch, nullptr);
    prompt.push_back(pick(logits.col(logits.cols() - 1), temperature, rng));
  }
  if (new_tokens == 0) {
    TokenBatch batch{1, static_cast<int>(std::min(prompt.size(), context)), {}, {}};
    batch.inputs.assign(prompt.end() - batch.length, prompt.end());
    validate_batch(parameters.config, batch);  // report bad prompt tokens even with no sampling
  }
  return prompt;
}

}  // namespace kwm::lm
