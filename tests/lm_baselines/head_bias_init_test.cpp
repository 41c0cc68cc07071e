// train.head_bias_init: unigram. The centred log unigram as a head bias reproduces the unigram
// reference exactly (closed form), and every learner's shift_head_bias moves exactly the head
// bias of its parameters, whatever subspace keeps them, and only that.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/lm/cross_entropy.hpp"
#include "core/lm/learners/learner_factory.hpp"
#include "core/lm/learners/unigram_baseline.hpp"
#include "tests/lm_baselines/lm_test_support.hpp"

namespace kwm::lm {
namespace {

using testing::batch_from;
using testing::MarkovSource;
using testing::tiny_model;

TEST(HeadBiasInit, TheLogUnigramBiasPredictsTheUnigram) {
  const MarkovSource source{32, 0.75};
  const auto train = source.sample(3000, 1);
  const auto held_out = source.sample(500, 2);
  const Eigen::VectorXd b = unigram_log_prior(train, 32);
  EXPECT_NEAR(b.mean(), 0.0, 1e-12);
  // Logits = b for every token: the softmax is the add-one unigram of the training tokens.
  Matrix<double> logits(32, static_cast<Eigen::Index>(held_out.size()));
  logits.colwise() = b;
  const double nll = cross_entropy(logits, held_out).mean_nll;
  EXPECT_NEAR(nll, unigram_nll(train, held_out, 32), 1e-12);
}

TEST(HeadBiasInit, EveryLearnerShiftsExactlyItsHeadBias) {
  GptConfig model = tiny_model(32, 16, 2);
  model.tied_head = false;
  Eigen::VectorXd delta(32);
  for (Eigen::Index v = 0; v < 32; ++v) delta(v) = 0.1 * static_cast<double>(v % 7) - 0.3;
  const char* const learners[] = {
      "{type: kwm-linearized}",
      "{type: rls-head}",
      "{type: adamw}",
      "{type: mezo, subspace: head}",
      "{type: mezo, subspace: {type: lora, rank: 2}}",
      "{type: mezo, subspace: {type: random, dimension: 4}}",
      "{type: kwm-ensemble, members: 4, subspace: head}",
      "{type: kwm-ensemble, members: 4, subspace: {type: lora, rank: 2, blocks: 1}}",
      "{type: kwm-ensemble, members: 4, subspace: all}",
  };
  const MarkovSource source{32, 0.75};
  const TokenBatch b = batch_from(source.sample(200, 3), 0, 2, 16);
  for (const char* yaml : learners) {
    SCOPED_TRACE(yaml);
    const auto plain = make_language_learner(YAML::Load(yaml), model, 5, {});
    const auto shifted = make_language_learner(YAML::Load(yaml), model, 5, {});
    shifted->shift_head_bias(delta);
    GptParameters<double> expected = plain->parameters();
    expected.head.bias += delta;
    EXPECT_LT((shifted->parameters().flatten() - expected.flatten()).cwiseAbs().maxCoeff(), 1e-14);
    // It stays shifted through a step (the learner's own copy moved, not just the view).
    shifted->step(b);
    EXPECT_GT((shifted->parameters().head.bias - plain->parameters().head.bias).norm(), 0.1);
    EXPECT_THROW(shifted->shift_head_bias(Eigen::VectorXd::Zero(31)), std::invalid_argument);
  }
  model.head_bias = false;
  const auto no_bias = make_language_learner(YAML::Load("{type: adamw}"), model, 5, {});
  EXPECT_THROW(no_bias->shift_head_bias(delta), std::invalid_argument);
}

}  // namespace
}  // namespace kwm::lm
