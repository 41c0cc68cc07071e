// The unigram (add-one smoothed) next-token model: the reference every language-model learner
// has to beat. A learner that cannot do better than token frequencies has learned nothing about
// context.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <span>
#include <vector>

namespace kwm::lm {

// p(v) = (count(v) + 1) / (N + V): Laplace's add-one estimate from the tokens counted so far.
class UnigramModel {
 public:
  // Throws std::invalid_argument when vocab_size < 1.
  explicit UnigramModel(int vocab_size);

  // Adds the tokens to the counts. Throws std::invalid_argument on an id outside [0, vocab).
  void count(std::span<const std::int32_t> tokens);

  double probability(std::int32_t token) const;
  // Mean negative log-likelihood (nats per token) of `tokens` under the current counts; 0 for an
  // empty span. Throws std::invalid_argument on an id outside [0, vocab).
  double mean_nll(std::span<const std::int32_t> tokens) const;

  int vocab_size() const { return static_cast<int>(counts_.size()); }
  std::int64_t total() const { return total_; }

 private:
  void check(std::int32_t token) const;

  std::vector<std::int64_t> counts_;
  std::int64_t total_ = 0;
};

// Held-out reference: counts from `training`, mean NLL on `evaluation`.
double unigram_nll(std::span<const std::int32_t> training, std::span<const std::int32_t> evaluation,
                   int vocab_size);

// log p(v) of the add-one unigram of `training`, minus its mean over the vocabulary (softmax
// does not see a constant): the head bias that makes a model with a zero head weight predict
// exactly the unigram (train.head_bias_init: unigram).
Eigen::VectorXd unigram_log_prior(std::span<const std::int32_t> training, int vocab_size);

// Prequential (online) reference, comparable to a learner's nll_before: each token is scored
// under the counts of the tokens before it, then counted. Mean over the stream.
double prequential_unigram_nll(std::span<const std::int32_t> tokens, int vocab_size);

}  // namespace kwm::lm
