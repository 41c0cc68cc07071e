// kwm-linearized: learns a Markov source below the unigram reference, the head block alone equals
// the shared-row closed form, 1..4 emulated ranks equal one rank, a NaN batch is skipped with the
// state untouched, and state()/restore() continues bit for bit.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/lm/cross_entropy.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/kwm_linearized_learner.hpp"
#include "core/lm/learners/unigram_baseline.hpp"
#include "tests/lm_baselines/lm_test_support.hpp"

namespace kwm::lm {
namespace {

using testing::batch_from;
using testing::MarkovSource;
using testing::tiny_model;

KwmLinearizedConfig linearized_config() {
  KwmLinearizedConfig c;
  c.initial_variance = 1.0;
  return c;
}

bool same_bits(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(double)) == 0;
}

TEST(KwmLinearized, FirstStepOfTheHeadEqualsTheSharedRowClosedForm) {
  // Before any block moves, the head's step is W + (1/r) D (L0 + (1/r) A A^T)^-1 with
  // D = (onehot - p) A^T, A = [final LN output; 1]: checked densely with an explicit inverse.
  const GptConfig model = tiny_model();
  const auto stream = MarkovSource{}.sample(1000, 1);
  const TokenBatch batch = batch_from(stream, 0, 4, 16);
  KwmLinearizedConfig config = linearized_config();
  config.noise_variance = 2.0;
  config.initial_variance = 0.5;
  KwmLinearizedLearner learner(config, model, 4, {});
  const GptParameters<double> before = learner.parameters();
  ForwardCache<double> cache;
  const CrossEntropy<double> loss = cross_entropy(forward(before, batch, &cache), batch.targets);
  const Eigen::Index d = model.d_model + 1;
  Eigen::MatrixXd a(d, batch.tokens());
  a.topRows(d - 1) = cache.linear.back().input;
  a.row(d - 1).setOnes();
  const Eigen::MatrixXd e = output_innovation(loss, batch.targets);
  const double r = config.noise_variance;
  const Eigen::MatrixXd l =
      Eigen::MatrixXd::Identity(d, d) / config.initial_variance + a * a.transpose() / r;
  Eigen::MatrixXd expected(model.vocab_size, d);
  expected << before.head.weight, before.head.bias;
  expected += (e * a.transpose() / r) * l.inverse();
  const StepReport report = learner.step(batch);
  EXPECT_EQ(report.transposed_jacobian_passes, 1);
  Eigen::MatrixXd got(model.vocab_size, d);
  got << learner.parameters().head.weight, learner.parameters().head.bias;
  EXPECT_LT((got - expected).norm() / expected.norm(), 1e-10);
  // Every other block moved too (nothing is frozen).
  EXPECT_NE(learner.parameters().blocks[0].qkv.weight, before.blocks[0].qkv.weight);
  EXPECT_NE(learner.parameters().token_embedding, before.token_embedding);
  EXPECT_NE(learner.parameters().blocks[0].ln1.gain, before.blocks[0].ln1.gain);
}

void expect_learns(const KwmLinearizedConfig& config, int layers, const char* label) {
  const GptConfig model = tiny_model(32, 16, layers);
  const MarkovSource source;
  const int steps = 60;
  const auto train = source.sample(static_cast<std::size_t>(steps * 8 * 16 + 1), 21);
  const auto valid = source.sample(16 * 16 + 1, 99);
  const TokenBatch validation = batch_from(valid, 0, 16, 16);
  const double unigram = unigram_nll(train, validation.targets, model.vocab_size);
  KwmLinearizedLearner learner(config, model, 7, {});
  const double initial = testing::mean_nll(learner.parameters(), validation);
  for (int s = 0; s < steps; ++s)
    ASSERT_FALSE(
        learner.step(batch_from(train, static_cast<std::size_t>(s * 8 * 16), 8, 16)).skipped);
  const double final_nll = testing::mean_nll(learner.parameters(), validation);
  std::printf("kwm-linearized %s: initial %.4f, final %.4f, unigram %.4f nats/token\n", label,
              initial, final_nll, unigram);
  EXPECT_LT(final_nll, unigram - 0.2) << label;
  EXPECT_EQ(learner.block_skips(), 0) << label;
}

TEST(KwmLinearized, LearnsAMarkovSourceBelowTheUnigramReference) {
  expect_learns(linearized_config(), 1, "fixed r, 1 layer");
}

TEST(KwmLinearized, AdaptiveNoiseAndTwoLayersAlsoLearn) {
  KwmLinearizedConfig config = linearized_config();
  config.noise_mode = LinearizedNoise::adaptive;
  config.forgetting = 0.99;
  expect_learns(config, 2, "adaptive r, forgetting 0.99, 2 layers");
}

// Ranks differ from one rank only in the order of the all-reduce sums. The layer-norm outputs
// that feed qkv, fc and the head sum to zero over their coordinates, so their input information
// is regularised only by the prior along [1; 0]: its condition number grows like N / (r v), and
// the adaptive r (the innovation energy, << 1) amplifies the reordering by that factor. Hence
// 1e-12 with fixed r = 1 and a documented 1e-8 with adaptive r.
void expect_ranks_equal_one_rank(const KwmLinearizedConfig& config, double tolerance) {
  const GptConfig model = tiny_model(32, 16, 2);
  const auto stream = MarkovSource{}.sample(3 * 8 * 16 + 1, 6);
  const int steps = 3;
  KwmLinearizedLearner single(config, model, 3, {});
  for (int s = 0; s < steps; ++s)
    single.step(batch_from(stream, static_cast<std::size_t>(s * 8 * 16), 8, 16));
  const Eigen::VectorXd reference = single.parameters().flatten();
  for (int ranks = 1; ranks <= 4; ++ranks) {
    std::vector<Eigen::VectorXd> result(static_cast<std::size_t>(ranks));
    std::vector<std::vector<int>> owners(static_cast<std::size_t>(ranks));
    testing::run_ranks(ranks, [&](int rank, LmCollectives collectives) {
      KwmLinearizedLearner learner(config, model, 3, std::move(collectives));
      const int first = 8 * rank / ranks;
      const int count = 8 * (rank + 1) / ranks - first;
      for (int s = 0; s < steps; ++s)
        learner.step(testing::share_of(
            batch_from(stream, static_cast<std::size_t>(s * 8 * 16), 8, 16), first, count));
      result[static_cast<std::size_t>(rank)] = learner.parameters().flatten();
      owners[static_cast<std::size_t>(rank)] = learner.owners();
    });
    for (int rank = 0; rank < ranks; ++rank) {
      const auto& got = result[static_cast<std::size_t>(rank)];
      const double error = (got - reference).norm() / reference.norm();
      EXPECT_LT(error, tolerance) << ranks << " ranks, rank " << rank;
      if (rank == 0) std::printf("kwm-linearized %d ranks: relative error %.3g\n", ranks, error);
      EXPECT_EQ(owners[static_cast<std::size_t>(rank)], owners[0]);
    }
    // Every rank owns at least one block (there are more blocks than ranks).
    for (int rank = 0; rank < ranks; ++rank)
      EXPECT_NE(std::find(owners[0].begin(), owners[0].end(), rank), owners[0].end());
  }
}

TEST(KwmLinearized, EmulatedRanksEqualOneRankFixedNoise) {
  expect_ranks_equal_one_rank(linearized_config(), 1e-12);
}

TEST(KwmLinearized, EmulatedRanksEqualOneRankAdaptiveNoise) {
  KwmLinearizedConfig config = linearized_config();
  config.noise_mode = LinearizedNoise::adaptive;
  expect_ranks_equal_one_rank(config, 1e-8);
}

TEST(KwmLinearized, NonFiniteBatchIsSkippedAndLeavesTheStateUntouched) {
  const GptConfig model = tiny_model();
  const auto stream = MarkovSource{}.sample(3 * 4 * 16 + 1, 8);
  KwmLinearizedLearner learner(linearized_config(), model, 2, {});
  learner.step(batch_from(stream, 0, 4, 16));
  LearnerState poisoned = learner.state();
  GptParameters<double> p = learner.parameters();
  p.blocks[0].fc.bias(3) = std::numeric_limits<double>::infinity();
  poisoned.tensors["parameters"] = p.flatten();
  learner.restore(poisoned);
  const LearnerState before = learner.state();
  const StepReport report = learner.step(batch_from(stream, 64, 4, 16));
  EXPECT_TRUE(report.skipped);
  EXPECT_EQ(learner.skips(), 1);
  const LearnerState after = learner.state();
  for (const auto& [key, tensor] : before.tensors)
    EXPECT_TRUE(same_bits(tensor, after.tensors.at(key))) << key;
}

TEST(KwmLinearized, StateRoundTripContinuesBitForBit) {
  const GptConfig model = tiny_model(32, 16, 2);
  const auto stream = MarkovSource{}.sample(6 * 4 * 16 + 1, 9);
  KwmLinearizedConfig config = linearized_config();
  config.noise_mode = LinearizedNoise::adaptive;
  config.forgetting = 0.98;
  KwmLinearizedLearner first(config, model, 5, {});
  for (int s = 0; s < 3; ++s)
    first.step(batch_from(stream, static_cast<std::size_t>(s * 64), 4, 16));
  const LearnerState saved = first.state();
  EXPECT_TRUE(saved.tensors.contains("blocks.1.fc.information"));
  EXPECT_TRUE(saved.tensors.contains("token_embedding.information"));
  EXPECT_TRUE(saved.tensors.contains("ln_f.information"));
  KwmLinearizedLearner second(config, model, 999, {});
  second.restore(saved);
  for (int s = 3; s < 6; ++s) {
    const TokenBatch b = batch_from(stream, static_cast<std::size_t>(s * 64), 4, 16);
    EXPECT_EQ(first.step(b).nll_before, second.step(b).nll_before);
  }
  EXPECT_TRUE(same_bits(first.parameters().flatten(), second.parameters().flatten()));
  const LearnerState a = first.state();
  const LearnerState b = second.state();
  for (const auto& [key, tensor] : a.tensors)
    EXPECT_TRUE(same_bits(tensor, b.tensors.at(key))) << key;
  EXPECT_EQ(a.counters, b.counters);

  LearnerState wrong = saved;
  wrong.tensors["blocks.0.qkv.information"] = Eigen::MatrixXd::Identity(3, 3);
  EXPECT_THROW(second.restore(wrong), std::invalid_argument);
}

}  // namespace
}  // namespace kwm::lm
