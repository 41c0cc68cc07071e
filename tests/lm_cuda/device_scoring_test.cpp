// Held-out scoring on the GPU (launch/lm/lm_device_scoring) against the CPU fp64 score_tokens
// (launch/lm/lm_evaluation): same windows, same token count, mean NLL and bits per byte within
// kScoreTolerance relative, for full and partial token budgets (max_tokens not a multiple of the
// window), several device batches per score, a re-upload and a model of another shape; ranks
// emulated in one process. The shared window selection (score_windows) is checked without a
// device: the ranks' windows partition the one-rank windows and batches respect their bound.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "distributed/communicator.hpp"
#include "launch/lm/lm_device_scoring.hpp"
#include "launch/lm/lm_evaluation.hpp"
#include "tests/lm/lm_test_support.hpp"
#include "tests/lm_cuda/lm_cuda_test_support.hpp"

namespace kwm::launch {
namespace {

// fp32 device pass against fp64: the forward tests measured the total NLL within 5.6e-8 relative
// (docs/gpu-lm.md); a score sums such totals over batches.
constexpr double kScoreTolerance = 1e-5;

// One emulated rank of `ranks`: every collective is local, and all_reduce_sum records what this
// rank contributed, so a test can add the ranks' shares itself.
class EmulatedRank final : public Communicator {
 public:
  EmulatedRank(int rank, int ranks) : rank_(rank), ranks_(ranks) {}
  int rank() const override { return rank_; }
  int size() const override { return ranks_; }
  std::string name() const override { return "emulated rank"; }
  void all_reduce_sum(double* data, std::size_t count) override {
    contributed.assign(data, data + count);
  }
  void all_reduce_sum(float*, std::size_t) override {
    throw std::logic_error("held-out scoring reduces doubles only");
  }
  bool all_reduce_any(bool flag) override { return flag; }
  void all_gather(const double*, std::size_t, double*) override { unexpected("all_gather"); }
  void all_gatherv(const double*, const std::vector<std::size_t>&, double*) override {
    unexpected("all_gatherv");
  }
  void broadcast(double*, std::size_t, int) override { unexpected("broadcast"); }
  void broadcast_bytes(void*, std::size_t, int) override { unexpected("broadcast_bytes"); }
  void barrier() override {}
  [[noreturn]] void abort(int exit_code) override {
    throw std::runtime_error("abort(" + std::to_string(exit_code) + ")");
  }

  std::vector<double> contributed;  // the last all_reduce_sum's input: {total nll, tokens}

 private:
  [[noreturn]] static void unexpected(const char* what) {
    throw std::logic_error(std::string("held-out scoring does not call ") + what);
  }
  int rank_, ranks_;
};

std::vector<std::int32_t> random_stream(int vocab, std::size_t size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int32_t> token(0, vocab - 1);
  std::vector<std::int32_t> stream(size);
  for (auto& t : stream) t = token(rng);
  return stream;
}

// Token i is i: a window's first input names its start.
TEST(LmScoreWindows, RanksPartitionTheOneRankWindowsInBoundedBatches) {
  std::vector<std::int32_t> tokens(1000);
  std::iota(tokens.begin(), tokens.end(), 0);
  for (const int length : {16, 77}) {
    for (const std::int64_t max_tokens : {std::int64_t{0}, std::int64_t{300}, std::int64_t{5}}) {
      for (const int per_batch : {1, 4, 64}) {
        std::set<std::int32_t> one_rank;
        for (const int ranks : {1, 2, 3, 5}) {
          std::set<std::int32_t> starts;
          double tokens_scored = 0.0;
          for (int r = 0; r < ranks; ++r) {
            EmulatedRank rank(r, ranks);
            score_windows(
                rank, tokens, length, max_tokens, 1.0, per_batch, [&](const lm::TokenBatch& batch) {
                  EXPECT_GE(batch.batch, 1);
                  EXPECT_LE(batch.batch, per_batch);
                  EXPECT_EQ(batch.length, length);
                  for (int w = 0; w < batch.batch; ++w) {
                    const std::int32_t start = batch.inputs[static_cast<std::size_t>(w) * length];
                    EXPECT_TRUE(starts.insert(start).second) << "window " << start;
                    EXPECT_EQ(start % length, 0);
                  }
                  for (std::size_t i = 0; i < batch.inputs.size(); ++i)
                    EXPECT_EQ(batch.targets[i], batch.inputs[i] + 1);
                  return 0.0;
                });
            ASSERT_EQ(rank.contributed.size(), 2u);
            tokens_scored += rank.contributed[1];
          }
          const std::string what = "length " + std::to_string(length) + ", max_tokens " +
                                   std::to_string(max_tokens) + ", " + std::to_string(ranks) +
                                   " ranks, " + std::to_string(per_batch) + " per batch";
          if (ranks == 1) one_rank = starts;
          EXPECT_EQ(starts, one_rank) << what;
          EXPECT_EQ(tokens_scored, static_cast<double>(starts.size()) * length) << what;
          const std::int64_t available = (1000 - 1) / length;
          const std::int64_t expected =
              max_tokens == 0
                  ? available
                  : std::min<std::int64_t>(available, (max_tokens + length - 1) / length);
          EXPECT_EQ(static_cast<std::int64_t>(starts.size()), expected) << what;
        }
      }
    }
  }
}

TEST(LmScoreWindows, RefusesAStreamTooShortOrAnEmptyWindow) {
  EmulatedRank rank(0, 1);
  const auto none = [](const lm::TokenBatch&) { return 0.0; };
  EXPECT_THROW(score_windows(rank, {7}, 4, 0, 1.0, 4, none), std::invalid_argument);
  EXPECT_THROW(score_windows(rank, {1, 2, 3}, 0, 0, 1.0, 4, none), std::invalid_argument);
  EXPECT_THROW(score_windows(rank, {1, 2, 3}, 2, 0, 1.0, 0, none), std::invalid_argument);
}

struct ScoreCase {
  int length;
  std::int64_t max_tokens;
};

// The device score against score_tokens on one rank, and the emulated ranks' device shares
// summed against the same totals.
void expect_device_matches_cpu(DeviceScorer& scorer, const lm::GptParameters<double>& parameters,
                               const std::vector<std::int32_t>& tokens, const ScoreCase& c,
                               const std::string& what) {
  const double bytes_per_token = 3.7;
  EmulatedRank one(0, 1);
  const LmScore cpu =
      score_tokens(one, parameters, tokens, c.length, c.max_tokens, bytes_per_token);
  const LmScore gpu =
      scorer.score(one, parameters, tokens, c.length, c.max_tokens, bytes_per_token);
  ASSERT_EQ(gpu.tokens, cpu.tokens) << what;
  const double nll_error = std::abs(gpu.nll - cpu.nll) / cpu.nll;
  EXPECT_LT(nll_error, kScoreTolerance) << what << ": device " << gpu.nll << ", cpu " << cpu.nll;
  EXPECT_LT(std::abs(gpu.bits_per_byte - cpu.bits_per_byte) / cpu.bits_per_byte, kScoreTolerance)
      << what;
  EXPECT_LT(std::abs(gpu.perplexity - cpu.perplexity) / cpu.perplexity, 10 * kScoreTolerance)
      << what;

  const int ranks = 3;
  double shares[2] = {0.0, 0.0};
  for (int r = 0; r < ranks; ++r) {
    EmulatedRank rank(r, ranks);
    scorer.score(rank, parameters, tokens, c.length, c.max_tokens, bytes_per_token);
    shares[0] += rank.contributed[0];
    shares[1] += rank.contributed[1];
  }
  EXPECT_EQ(shares[1], static_cast<double>(cpu.tokens)) << what << ", 3 ranks";
  const double share_error = std::abs(shares[0] / shares[1] - cpu.nll) / cpu.nll;
  EXPECT_LT(share_error, kScoreTolerance) << what << ", 3 ranks";
  std::cout << "[ measured ] " << what << " (length " << c.length << ", max_tokens " << c.max_tokens
            << ", " << cpu.tokens << " tokens): nll " << cpu.nll << ", relative " << nll_error
            << " (1 rank), " << share_error << " (3 ranks)\n";
}

TEST(LmDeviceScoring, MatchesTheCpuFp64ScoreOnEveryWindowLayout) {
  KWM_REQUIRE_CUDA_DEVICE();
  const lm::GptConfig config = lm::testing::deeper_config();  // vocab 384, context 128, d 128
  const auto first = lm::testing::random_parameters(config, 61, 0.1);
  const auto second = lm::testing::random_parameters(config, 62, 0.1);
  const auto tokens = random_stream(config.vocab_size, 5000, 63);
  DeviceScorer scorer;
  // All 39 full-context windows in one device batch; 8 windows for a budget of 1000 tokens
  // (not a multiple of 128); 312 windows of 16 in five batches of at most 64 (the last one
  // partial); 39 windows of 77 for a budget of 3001; two windows, fewer than the 3 ranks.
  const std::vector<ScoreCase> cases = {{128, 0}, {128, 1000}, {16, 0}, {77, 3001}, {128, 200}};
  for (const ScoreCase& c : cases) expect_device_matches_cpu(scorer, first, tokens, c, "first");
  // The same scorer, new parameters (one upload, no new forward pass object).
  for (const ScoreCase& c : cases) expect_device_matches_cpu(scorer, second, tokens, c, "second");
}

TEST(LmDeviceScoring, RebuildsItsForwardPassForAModelOfAnotherShape) {
  KWM_REQUIRE_CUDA_DEVICE();
  const lm::GptConfig tied;  // vocab 256, context 64, d 64, 2 layers, tied head with bias
  const lm::GptConfig untied = lm::testing::small_config(false);  // vocab 23, context 8
  const auto tokens = random_stream(untied.vocab_size, 700, 71);
  DeviceScorer scorer;
  expect_device_matches_cpu(scorer, lm::testing::random_parameters(tied, 72, 0.1), tokens,
                            {64, 500}, "tiny tied");
  expect_device_matches_cpu(scorer, lm::testing::random_parameters(untied, 73, 0.3), tokens, {8, 0},
                            "small untied");
}

}  // namespace
}  // namespace kwm::launch
