// The add-one unigram reference: hand-computed probabilities and NLLs, the prequential variant,
// and bad input.
#include "core/lm/learners/unigram_baseline.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace kwm::lm {
namespace {

TEST(UnigramBaseline, AddOneProbabilitiesByHand) {
  UnigramModel model(4);
  const std::vector<std::int32_t> tokens = {0, 0, 1, 3, 0};
  model.count(tokens);
  // counts 3, 1, 0, 1 over N = 5 tokens, V = 4: p = (c + 1) / 9.
  EXPECT_DOUBLE_EQ(model.probability(0), 4.0 / 9.0);
  EXPECT_DOUBLE_EQ(model.probability(1), 2.0 / 9.0);
  EXPECT_DOUBLE_EQ(model.probability(2), 1.0 / 9.0);
  EXPECT_DOUBLE_EQ(model.probability(3), 2.0 / 9.0);
  const std::vector<std::int32_t> eval = {2, 0};
  EXPECT_NEAR(model.mean_nll(eval), -(std::log(1.0 / 9.0) + std::log(4.0 / 9.0)) / 2.0, 1e-15);
  EXPECT_NEAR(unigram_nll(tokens, eval, 4), model.mean_nll(eval), 1e-15);
}

TEST(UnigramBaseline, EmptyCountsAreUniform) {
  UnigramModel model(8);
  const std::vector<std::int32_t> eval = {1, 7, 3};
  EXPECT_NEAR(model.mean_nll(eval), std::log(8.0), 1e-15);
}

TEST(UnigramBaseline, PrequentialScoresEachTokenBeforeCountingIt) {
  // Tokens 1, 1, 0 over V = 2: p(1) = 1/2, then p(1) = 2/3, then p(0) = 1/4.
  const std::vector<std::int32_t> tokens = {1, 1, 0};
  const double expected = -(std::log(0.5) + std::log(2.0 / 3.0) + std::log(0.25)) / 3.0;
  EXPECT_NEAR(prequential_unigram_nll(tokens, 2), expected, 1e-15);
}

TEST(UnigramBaseline, RejectsBadInput) {
  EXPECT_THROW(UnigramModel(0), std::invalid_argument);
  UnigramModel model(3);
  const std::vector<std::int32_t> bad = {0, 3};
  EXPECT_THROW(model.count(bad), std::invalid_argument);
  EXPECT_EQ(model.total(), 0);  // nothing counted from a rejected span
  EXPECT_THROW((void)model.probability(-1), std::invalid_argument);
}

}  // namespace
}  // namespace kwm::lm
