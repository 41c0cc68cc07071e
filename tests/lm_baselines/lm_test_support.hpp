// Shared by the lm_baselines suites: a tiny GPT, a learnable Markov token source with a fixed
// seed, held-out evaluation, and an in-process emulation of R ranks (one thread per rank,
// collectives over shared memory, sums taken in rank order).
#pragma once

#include <Eigen/Core>
#include <barrier>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <thread>
#include <vector>

#include "core/lm/cross_entropy.hpp"
#include "core/lm/gpt_config.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/language_learner.hpp"
#include "core/lm/token_batch.hpp"

namespace kwm::lm::testing {

inline GptConfig tiny_model(int vocab = 32, int d_model = 16, int layers = 1) {
  GptConfig c;
  c.vocab_size = vocab;
  c.context = 16;
  c.d_model = d_model;
  c.n_layers = layers;
  c.n_heads = 2;
  c.tied_head = true;
  return c;
}

// First-order Markov chain: from token c the next token is succ(c) = (5 c + 3) mod V with
// probability `follow`, otherwise a draw from a fixed skewed distribution q (q_v ~ 1/(1 + v)).
// The conditional entropy is far below the unigram entropy, so a model that reads its input
// token beats the unigram reference by a wide margin.
struct MarkovSource {
  int vocab = 32;
  double follow = 0.75;

  std::int32_t successor(std::int32_t c) const { return (5 * c + 3) % vocab; }

  std::vector<std::int32_t> sample(std::size_t n, std::uint64_t seed) const {
    std::mt19937_64 engine(seed);
    std::vector<double> q(static_cast<std::size_t>(vocab));
    for (int v = 0; v < vocab; ++v) q[static_cast<std::size_t>(v)] = 1.0 / (1.0 + v);
    std::discrete_distribution<int> other(q.begin(), q.end());
    std::bernoulli_distribution follows(follow);
    std::vector<std::int32_t> tokens(n);
    std::int32_t c = 0;
    for (std::size_t i = 0; i < n; ++i) {
      c = follows(engine) ? successor(c) : static_cast<std::int32_t>(other(engine));
      tokens[i] = c;
    }
    return tokens;
  }
};

// Sequences of `length` inputs and their next tokens, cut from `stream` starting at `start`
// (sequence b covers stream[start + b*length, start + (b+1)*length]).
inline TokenBatch batch_from(const std::vector<std::int32_t>& stream, std::size_t start,
                             int sequences, int length) {
  TokenBatch b;
  b.batch = sequences;
  b.length = length;
  for (int s = 0; s < sequences; ++s) {
    for (int t = 0; t < length; ++t) {
      const std::size_t i = start + static_cast<std::size_t>(s * length + t);
      b.inputs.push_back(stream.at(i));
      b.targets.push_back(stream.at(i + 1));
    }
  }
  return b;
}

// Sequences [first, first + count) of a batch: one rank's share.
inline TokenBatch share_of(const TokenBatch& b, int first, int count) {
  TokenBatch s;
  s.batch = count;
  s.length = b.length;
  const auto from = static_cast<std::ptrdiff_t>(first * b.length);
  const auto to = static_cast<std::ptrdiff_t>((first + count) * b.length);
  s.inputs.assign(b.inputs.begin() + from, b.inputs.begin() + to);
  s.targets.assign(b.targets.begin() + from, b.targets.begin() + to);
  return s;
}

inline double mean_nll(const GptParameters<double>& p, const TokenBatch& b) {
  return cross_entropy(forward(p, b, nullptr), b.targets).mean_nll;
}

// Emulated collectives for R ranks that run in R threads of this process.
class ThreadCollectives {
 public:
  explicit ThreadCollectives(int ranks)
      : ranks_(ranks), barrier_(ranks), slots_(static_cast<std::size_t>(ranks)) {}

  LmCollectives for_rank(int rank) {
    LmCollectives c;
    c.rank = rank;
    c.ranks = ranks_;
    c.all_reduce_sum = [this, rank](double* data, std::size_t count) { reduce(rank, data, count); };
    c.broadcast = [this, rank](double* data, std::size_t count, int root) {
      auto& slot = slots_[static_cast<std::size_t>(rank)];
      slot.assign(data, data + count);
      barrier_.arrive_and_wait();
      const auto& source = slots_[static_cast<std::size_t>(root)];
      std::copy(source.begin(), source.end(), data);
      barrier_.arrive_and_wait();
    };
    c.any = [this, rank](bool flag) {
      double v = flag ? 1.0 : 0.0;
      reduce(rank, &v, 1);
      return v > 0.0;
    };
    return c;
  }

 private:
  void reduce(int rank, double* data, std::size_t count) {
    slots_[static_cast<std::size_t>(rank)].assign(data, data + count);
    barrier_.arrive_and_wait();
    for (std::size_t i = 0; i < count; ++i) {
      double sum = 0.0;
      for (const auto& slot : slots_) sum += slot[i];
      data[i] = sum;
    }
    barrier_.arrive_and_wait();  // nobody overwrites a slot before everyone has read it
  }

  int ranks_;
  std::barrier<> barrier_;
  std::vector<std::vector<double>> slots_;
};

// Runs body(rank, collectives) on R threads and joins them.
inline void run_ranks(int ranks, const std::function<void(int, LmCollectives)>& body) {
  ThreadCollectives collectives(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] { body(r, collectives.for_rank(r)); });
  for (auto& t : threads) t.join();
}

}  // namespace kwm::lm::testing
