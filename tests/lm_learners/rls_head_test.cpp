// rls-head: one step equals the dense Kronecker (G (x) A) solve, it learns a Markov source below
// the unigram reference with the body frozen, 1..4 emulated ranks equal one rank, a NaN batch is
// skipped with the state untouched, and state()/restore() continues bit for bit.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <limits>

#include "core/lm/cross_entropy.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/rls_head_learner.hpp"
#include "core/lm/learners/unigram_baseline.hpp"
#include "tests/lm_baselines/lm_test_support.hpp"

namespace kwm::lm {
namespace {

using testing::batch_from;
using testing::MarkovSource;
using testing::tiny_model;

RlsHeadConfig head_config() {
  RlsHeadConfig c;
  c.initial_variance = 1.0;
  c.delta = 1e-2;
  c.probability_ema = 0.0;  // the batch mean: the closed forms below use it
  return c;
}

TEST(RlsHead, OneStepEqualsTheDenseKroneckerSolve) {
  const GptConfig model = tiny_model();
  const auto stream = MarkovSource{}.sample(2000, 3);
  const TokenBatch batch = batch_from(stream, 0, 4, 16);
  const RlsHeadConfig config = head_config();
  RlsHeadLearner learner(config, model, 7, {});
  const GptParameters<double> before = learner.parameters();
  EXPECT_FALSE(before.config.tied_head);
  ASSERT_EQ(before.head.weight.rows(), model.vocab_size);

  // Reference: features, probabilities and the Kronecker-factored Newton step, densely.
  ForwardCache<double> cache;
  const Matrix<double> logits = forward(before, batch, &cache);
  const CrossEntropy<double> loss = cross_entropy(logits, batch.targets);
  const Eigen::Index d = model.d_model + 1;
  const Eigen::Index v = model.vocab_size;
  const Eigen::Index n = batch.tokens();
  Eigen::MatrixXd a(d, n);
  a.topRows(d - 1) = cache.linear.back().input;
  a.row(d - 1).setOnes();
  Eigen::MatrixXd onehot = Eigen::MatrixXd::Zero(v, n);
  for (Eigen::Index i = 0; i < n; ++i) onehot(batch.targets[static_cast<std::size_t>(i)], i) = 1;
  const Eigen::MatrixXd cross = (onehot - loss.probabilities) * a.transpose();
  const Eigen::MatrixXd input_information =
      Eigen::MatrixXd::Identity(d, d) / config.initial_variance + a * a.transpose();
  const Eigen::VectorXd pbar = loss.probabilities.rowwise().mean();
  Eigen::MatrixXd output_factor = -pbar * pbar.transpose();
  output_factor.diagonal().array() += pbar.array() + config.delta;
  Eigen::MatrixXd kronecker(v * d, v * d);  // A (x) G: vec(G^-1 D A^-1) = (A (x) G)^-1 vec(D)
  for (Eigen::Index j = 0; j < d; ++j)
    for (Eigen::Index i = 0; i < d; ++i)
      kronecker.block(i * v, j * v, v, v) = input_information(i, j) * output_factor;
  const Eigen::VectorXd step =
      kronecker.ldlt().solve(Eigen::Map<const Eigen::VectorXd>(cross.data(), v * d));
  Eigen::MatrixXd expected(v, d);
  expected.leftCols(d - 1) = before.head.weight;
  expected.col(d - 1) = before.head.bias;
  expected += Eigen::Map<const Eigen::MatrixXd>(step.data(), v, d);

  const StepReport report = learner.step(batch);
  EXPECT_FALSE(report.skipped);
  EXPECT_NEAR(report.nll_before, loss.mean_nll, 1e-12);
  EXPECT_EQ(report.forward_passes, 1);
  EXPECT_EQ(report.transposed_jacobian_passes, 0);
  Eigen::MatrixXd got(v, d);
  got.leftCols(d - 1) = learner.parameters().head.weight;
  got.col(d - 1) = learner.parameters().head.bias;
  EXPECT_LT((got - expected).norm() / expected.norm(), 1e-10);
  // The body did not move.
  EXPECT_EQ(learner.parameters().token_embedding, before.token_embedding);
  EXPECT_EQ(learner.parameters().blocks[0].fc.weight, before.blocks[0].fc.weight);
  EXPECT_EQ(learner.parameters().ln_f.gain, before.ln_f.gain);
}

TEST(RlsHead, LearnsAMarkovSourceBelowTheUnigramReference) {
  const GptConfig model = tiny_model();
  const MarkovSource source;
  const auto train = source.sample(60 * 8 * 16 + 1, 21);
  const auto valid = source.sample(16 * 16 + 1, 99);
  const TokenBatch validation = batch_from(valid, 0, 16, 16);
  const double unigram = unigram_nll(train, validation.targets, model.vocab_size);
  RlsHeadLearner learner(head_config(), model, 7, {});
  const double initial = testing::mean_nll(learner.parameters(), validation);
  for (int s = 0; s < 60; ++s)
    ASSERT_FALSE(
        learner.step(batch_from(train, static_cast<std::size_t>(s * 8 * 16), 8, 16)).skipped);
  const double final_nll = testing::mean_nll(learner.parameters(), validation);
  RecordProperty("unigram_nll", std::to_string(unigram));
  RecordProperty("final_nll", std::to_string(final_nll));
  std::printf("rls-head: initial %.4f, final %.4f, unigram %.4f nats/token\n", initial, final_nll,
              unigram);
  EXPECT_LT(final_nll, unigram - 0.2);
}

TEST(RlsHead, EmulatedRanksEqualOneRank) {
  const GptConfig model = tiny_model();
  const auto stream = MarkovSource{}.sample(4 * 8 * 16 + 1, 4);
  const int steps = 4;
  RlsHeadLearner single(head_config(), model, 3, {});
  for (int s = 0; s < steps; ++s)
    single.step(batch_from(stream, static_cast<std::size_t>(s * 8 * 16), 8, 16));
  const Eigen::VectorXd reference = single.parameters().flatten();
  for (int ranks = 1; ranks <= 4; ++ranks) {
    std::vector<Eigen::VectorXd> result(static_cast<std::size_t>(ranks));
    testing::run_ranks(ranks, [&](int rank, LmCollectives collectives) {
      RlsHeadLearner learner(head_config(), model, 3, std::move(collectives));
      const int first = 8 * rank / ranks;
      const int count = 8 * (rank + 1) / ranks - first;
      for (int s = 0; s < steps; ++s)
        learner.step(testing::share_of(
            batch_from(stream, static_cast<std::size_t>(s * 8 * 16), 8, 16), first, count));
      result[static_cast<std::size_t>(rank)] = learner.parameters().flatten();
    });
    for (int rank = 0; rank < ranks; ++rank) {
      const auto& got = result[static_cast<std::size_t>(rank)];
      EXPECT_LT((got - reference).norm() / reference.norm(), 1e-12)
          << ranks << " ranks, rank " << rank;
    }
  }
}

TEST(RlsHead, NonFiniteBatchIsSkippedAndLeavesTheStateUntouched) {
  const GptConfig model = tiny_model();
  const auto stream = MarkovSource{}.sample(3 * 4 * 16 + 1, 8);
  RlsHeadLearner learner(head_config(), model, 2, {});
  learner.step(batch_from(stream, 0, 4, 16));
  LearnerState poisoned = learner.state();
  // A NaN in the final layer norm's gain makes every logit NaN.
  GptParameters<double> p = learner.parameters();
  p.ln_f.gain(0) = std::numeric_limits<double>::quiet_NaN();
  poisoned.tensors["parameters"] = p.flatten();
  learner.restore(poisoned);
  const LearnerState before = learner.state();
  const StepReport report = learner.step(batch_from(stream, 64, 4, 16));
  EXPECT_TRUE(report.skipped);
  EXPECT_EQ(learner.skips(), 1);
  const LearnerState after = learner.state();
  for (const auto& [key, tensor] : before.tensors) {
    const Eigen::MatrixXd& other = after.tensors.at(key);
    ASSERT_EQ(tensor.size(), other.size()) << key;
    EXPECT_EQ(0, std::memcmp(tensor.data(), other.data(),
                             static_cast<std::size_t>(tensor.size()) * sizeof(double)))
        << key;
  }
}

TEST(RlsHead, StateRoundTripContinuesBitForBit) {
  const GptConfig model = tiny_model();
  const auto stream = MarkovSource{}.sample(6 * 4 * 16 + 1, 9);
  RlsHeadConfig config = head_config();
  config.probability_ema = 0.5;
  config.forgetting = 0.99;
  RlsHeadLearner first(config, model, 5, {});
  for (int s = 0; s < 3; ++s)
    first.step(batch_from(stream, static_cast<std::size_t>(s * 64), 4, 16));
  RlsHeadLearner second(config, model, 12345, {});  // a different seed: restore must overwrite it
  second.restore(first.state());
  for (int s = 3; s < 6; ++s) {
    const TokenBatch b = batch_from(stream, static_cast<std::size_t>(s * 64), 4, 16);
    EXPECT_EQ(first.step(b).nll_before, second.step(b).nll_before);
  }
  const Eigen::VectorXd a = first.parameters().flatten();
  const Eigen::VectorXd b = second.parameters().flatten();
  EXPECT_EQ(0,
            std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(double)));

  LearnerState missing = first.state();
  missing.tensors.erase("head.information");
  EXPECT_THROW(
      {
        try {
          second.restore(missing);
        } catch (const std::invalid_argument& e) {
          EXPECT_NE(std::string(e.what()).find("head.information"), std::string::npos);
          throw;
        }
      },
      std::invalid_argument);
}

}  // namespace
}  // namespace kwm::lm
