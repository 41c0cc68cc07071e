// TokenLoader: targets are inputs shifted by one, sequential epochs, seeded random windows,
// cursor save/restore, and R ranks together equal one rank.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <numeric>

#include "core/text/token_loader.hpp"
#include "tests/text/text_test_support.hpp"

namespace kwm::text {
namespace {

// Token i has id i mod 97, so a window's start is visible in its first token.
std::vector<std::int32_t> stream(std::size_t count) {
  std::vector<std::int32_t> tokens(count);
  for (std::size_t i = 0; i < count; ++i) tokens[i] = static_cast<std::int32_t>(i % 97);
  return tokens;
}

LoaderOptions options(Sampling sampling, int batch, int length) {
  LoaderOptions o;
  o.sampling = sampling;
  o.batch = batch;
  o.length = length;
  o.seed = 2024;
  return o;
}

// Concatenates the rows of several ranks' batches in rank order.
lm::TokenBatch concatenate(const std::vector<lm::TokenBatch>& parts) {
  lm::TokenBatch all;
  all.length = parts.front().length;
  for (const auto& part : parts) {
    all.batch += part.batch;
    all.inputs.insert(all.inputs.end(), part.inputs.begin(), part.inputs.end());
    all.targets.insert(all.targets.end(), part.targets.begin(), part.targets.end());
  }
  return all;
}

void expect_same(const lm::TokenBatch& a, const lm::TokenBatch& b) {
  EXPECT_EQ(a.batch, b.batch);
  EXPECT_EQ(a.length, b.length);
  EXPECT_EQ(a.inputs, b.inputs);
  EXPECT_EQ(a.targets, b.targets);
}

TEST(TokenLoader, SequentialWindowsTileTheStreamAndEpochsWrap) {
  // 101 tokens, T = 10: windows start at 0, 10, ..., 90 (W = 10); B = 4 uses 8 per epoch.
  TokenLoader loader(stream(101), options(Sampling::sequential, 4, 10), "seq");
  EXPECT_EQ(loader.windows_per_epoch(), 10);
  const lm::TokenBatch first = loader.next();
  ASSERT_EQ(first.inputs.size(), 40u);
  ASSERT_EQ(first.targets.size(), 40u);
  for (int b = 0; b < 4; ++b) {
    for (int t = 0; t < 10; ++t) {
      const auto n = static_cast<std::size_t>(b * 10 + t);
      EXPECT_EQ(first.inputs[n], (10 * b + t) % 97);
      EXPECT_EQ(first.targets[n], (10 * b + t + 1) % 97);
    }
  }
  EXPECT_EQ(loader.next().inputs[0], 40);
  EXPECT_EQ(loader.cursor(), (LoaderCursor{0, 8, 0}));
  const lm::TokenBatch wrapped = loader.next();  // 2 windows left < B: new epoch from window 0
  EXPECT_EQ(loader.cursor(), (LoaderCursor{1, 4, 0}));
  expect_same(wrapped, first);
}

TEST(TokenLoader, RandomWindowsAreSeededAndInRange) {
  const auto tokens = stream(5000);
  TokenLoader a(tokens, options(Sampling::random, 8, 16), "a");
  TokenLoader b(tokens, options(Sampling::random, 8, 16), "b");
  LoaderOptions other_seed = options(Sampling::random, 8, 16);
  other_seed.seed = 2025;
  TokenLoader c(tokens, other_seed, "c");
  bool any_difference = false;
  for (int step = 0; step < 20; ++step) {
    const auto x = a.next();
    expect_same(x, b.next());
    any_difference = any_difference || x.inputs != c.next().inputs;
    for (std::size_t n = 0; n < x.inputs.size(); ++n) {
      EXPECT_EQ(x.targets[n], (x.inputs[n] + 1) % 97);  // consecutive tokens of the stream
    }
  }
  EXPECT_TRUE(any_difference);
  EXPECT_EQ(a.cursor().draws, 160u);
}

TEST(TokenLoader, RestoredCursorReproducesTheSameBatches) {
  for (const Sampling sampling : {Sampling::sequential, Sampling::random}) {
    const auto tokens = stream(3001);
    TokenLoader original(tokens, options(sampling, 6, 25), "original");
    for (int step = 0; step < 27; ++step) original.next();  // past an epoch boundary (W = 120)
    const LoaderCursor saved = original.cursor();
    EXPECT_GE(saved.epoch, 1);
    std::vector<lm::TokenBatch> expected;
    for (int step = 0; step < 30; ++step) expected.push_back(original.next());

    TokenLoader resumed(tokens, options(sampling, 6, 25), "resumed");
    resumed.restore(saved);
    for (const auto& batch : expected) expect_same(resumed.next(), batch);
    EXPECT_EQ(resumed.cursor(), original.cursor());
  }
}

TEST(TokenLoader, RanksTogetherSeeTheSingleRankBatch) {
  for (const Sampling sampling : {Sampling::sequential, Sampling::random}) {
    for (const int ranks : {2, 3, 6}) {
      const auto tokens = stream(2000);
      TokenLoader single(tokens, options(sampling, 6, 12), "single");
      std::vector<TokenLoader> sharded;
      for (int r = 0; r < ranks; ++r) {
        LoaderOptions o = options(sampling, 6, 12);
        o.rank = r;
        o.ranks = ranks;
        sharded.emplace_back(tokens, o, "rank " + std::to_string(r));
      }
      for (int step = 0; step < 40; ++step) {
        std::vector<lm::TokenBatch> parts;
        for (auto& loader : sharded) {
          parts.push_back(loader.next());
          EXPECT_EQ(parts.back().batch, 6 / ranks);
        }
        expect_same(concatenate(parts), single.next());
      }
      for (const auto& loader : sharded) EXPECT_EQ(loader.cursor(), single.cursor());
    }
  }
}

TEST(TokenLoader, BadOptionsAndCursorsAreNamed) {
  KWM_EXPECT_THROW_WITH(TokenLoader(stream(50), options(Sampling::sequential, 8, 10), "short.tok"),
                        std::invalid_argument, "short.tok: 50 tokens make 4 windows");
  LoaderOptions uneven = options(Sampling::sequential, 6, 10);
  uneven.ranks = 4;
  KWM_EXPECT_THROW_WITH(TokenLoader(stream(1000), uneven, "s"), std::invalid_argument,
                        "not divisible by the 4 ranks");
  TokenLoader loader(stream(1000), options(Sampling::sequential, 4, 10), "s");
  KWM_EXPECT_THROW_WITH(loader.restore(LoaderCursor{0, 1000, 0}), std::invalid_argument,
                        "does not fit");
}

TEST(LoaderOptions, ParsesKeysAndNamesBadOnes) {
  const LoaderOptions o =
      parse_loader_options(YAML::Load("{batch: 16, length: 128, sampling: random, seed: 9}"));
  EXPECT_EQ(o.batch, 16);
  EXPECT_EQ(o.length, 128);
  EXPECT_EQ(o.sampling, Sampling::random);
  EXPECT_EQ(o.seed, 9u);
  KWM_EXPECT_THROW_WITH(parse_loader_options(YAML::Load("{batch: 0}")), std::invalid_argument,
                        "loader.batch");
  KWM_EXPECT_THROW_WITH(parse_loader_options(YAML::Load("{sampling: shuffled}")),
                        std::invalid_argument, "loader.sampling");
  KWM_EXPECT_THROW_WITH(parse_loader_options(YAML::Load("{stride: 3}")), std::invalid_argument,
                        "unknown config key loader.stride");
}

}  // namespace
}  // namespace kwm::text
