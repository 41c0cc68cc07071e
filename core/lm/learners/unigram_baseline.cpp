// Add-one smoothed unigram: counts and log-probabilities.
#include "core/lm/learners/unigram_baseline.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace kwm::lm {

UnigramModel::UnigramModel(int vocab_size) {
  if (vocab_size < 1)
    throw std::invalid_argument("unigram: vocab_size must be >= 1; got " +
                                std::to_string(vocab_size));
  counts_.assign(static_cast<std::size_t>(vocab_size), 0);
}

void UnigramModel::check(std::int32_t token) const {
  if (token < 0 || token >= vocab_size())
    throw std::invalid_argument("unigram: token id " + std::to_string(token) + " outside [0, " +
                                std::to_string(vocab_size()) + ")");
}

void UnigramModel::count(std::span<const std::int32_t> tokens) {
  for (const std::int32_t t : tokens) check(t);
  for (const std::int32_t t : tokens) ++counts_[static_cast<std::size_t>(t)];
  total_ += static_cast<std::int64_t>(tokens.size());
}

double UnigramModel::probability(std::int32_t token) const {
  check(token);
  return static_cast<double>(counts_[static_cast<std::size_t>(token)] + 1) /
         static_cast<double>(total_ + vocab_size());
}

double UnigramModel::mean_nll(std::span<const std::int32_t> tokens) const {
  if (tokens.empty()) return 0.0;
  double total = 0.0;
  for (const std::int32_t t : tokens) total -= std::log(probability(t));
  return total / static_cast<double>(tokens.size());
}

double unigram_nll(std::span<const std::int32_t> training, std::span<const std::int32_t> evaluation,
                   int vocab_size) {
  UnigramModel model(vocab_size);
  model.count(training);
  return model.mean_nll(evaluation);
}

Eigen::VectorXd unigram_log_prior(std::span<const std::int32_t> training, int vocab_size) {
  UnigramModel model(vocab_size);
  model.count(training);
  Eigen::VectorXd log_p(vocab_size);
  double sum = 0.0;  // a plain loop: vocab_size >= 1 here (UnigramModel checked it)
  for (int v = 0; v < vocab_size; ++v) {
    log_p(v) = std::log(model.probability(v));
    sum += log_p(v);
  }
  return log_p.array() - sum / static_cast<double>(vocab_size);
}

double prequential_unigram_nll(std::span<const std::int32_t> tokens, int vocab_size) {
  if (tokens.empty()) return 0.0;
  UnigramModel model(vocab_size);
  double total = 0.0;
  for (const std::int32_t t : tokens) {
    total -= std::log(model.probability(t));
    model.count(std::span<const std::int32_t>(&t, 1));
  }
  return total / static_cast<double>(tokens.size());
}

}  // namespace kwm::lm
