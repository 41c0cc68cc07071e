// mezo: the step is -lr g z with z regenerated from the seed and g the two-point difference (a
// head subspace from one shared body pass), runs are reproducible from the seed, it learns past the
// unigram reference, restarts bit for bit, agrees across emulated ranks, and checks its config.
#include "core/lm/learners/mezo_learner.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/lm/learners/ensemble_random.hpp"
#include "core/lm/learners/ensemble_subspace.hpp"
#include "core/lm/learners/learner_factory.hpp"
#include "core/lm/learners/unigram_baseline.hpp"
#include "tests/lm_baselines/lm_test_support.hpp"

namespace kwm::lm {
namespace {

using testing::batch_from;
using testing::MarkovSource;
using testing::tiny_model;

// The counter-based direction: coordinate i is counter_normal(stream, i), and the draws look like
// i.i.d. N(0, 1) (mean, variance, kurtosis, and the correlation of the Box-Muller pairs, each
// within 5 standard errors over 2e5 draws).
TEST(MezoLearner, DirectionIsCounterBasedStandardNormal) {
  constexpr Eigen::Index n = 200000;
  const Eigen::VectorXd z = MezoLearner::direction(21, 3, n);
  const std::uint64_t stream = stream_seed(21, RandomPurpose::mezo_direction, 3, 0);
  for (const Eigen::Index i : {Eigen::Index{0}, Eigen::Index{1}, Eigen::Index{12345}, n - 1})
    EXPECT_EQ(z(i), counter_normal(stream, static_cast<std::uint64_t>(i)));
  const double se = 1.0 / std::sqrt(static_cast<double>(n));
  EXPECT_LT(std::abs(z.mean()), 5 * se);
  const double variance = z.squaredNorm() / n;
  EXPECT_LT(std::abs(variance - 1.0), 5 * std::sqrt(2.0) * se);
  EXPECT_LT(std::abs(z.array().pow(4).mean() - 3.0), 5 * std::sqrt(96.0) * se);
  const Eigen::Map<const Eigen::MatrixXd, 0, Eigen::OuterStride<>> pairs(z.data(), 2, n / 2,
                                                                         Eigen::OuterStride<>(2));
  const double pair_correlation = pairs.row(0).dot(pairs.row(1)) / (n / 2);
  EXPECT_LT(std::abs(pair_correlation), 5 * std::sqrt(2.0) * se);
  EXPECT_FALSE(z.isApprox(MezoLearner::direction(21, 4, n)));  // another step, another z
}

TEST(MezoLearner, StepIsTheTwoPointEstimateAlongTheSeededDirection) {
  const GptConfig model = tiny_model();
  const auto stream = MarkovSource{model.vocab_size, 0.75}.sample(200, 4);
  const TokenBatch batch = batch_from(stream, 0, 2, 16);
  MezoConfig config;
  config.schedule.learning_rate = 1e-3;
  config.epsilon = 1e-3;
  MezoLearner learner(config, model, 21);
  const Eigen::VectorXd theta0 = learner.parameters().flatten();
  const StepReport r = learner.step(batch);
  EXPECT_EQ(r.forward_passes, 2);
  EXPECT_EQ(r.transposed_jacobian_passes, 0);

  const Eigen::VectorXd z = MezoLearner::direction(21, 1, theta0.size());
  GptParameters<double> p = learner.parameters();
  p.unflatten(theta0 + 1e-3 * z);
  const double plus = testing::mean_nll(p, batch);
  p.unflatten(theta0 - 1e-3 * z);
  const double minus = testing::mean_nll(p, batch);
  const double g = (plus - minus) / 2e-3;
  EXPECT_NEAR(learner.last_projected_gradient(), g, 1e-9 * std::abs(g) + 1e-12);
  EXPECT_NEAR(r.nll_before, 0.5 * (plus + minus), 1e-12);
  const Eigen::VectorXd expected = theta0 - (1e-3 * g) * z;
  EXPECT_LT((learner.parameters().flatten() - expected).cwiseAbs().maxCoeff(), 1e-15);
  EXPECT_GT((learner.parameters().flatten() - theta0).norm(), 0.0);
}

// With a subspace that leaves the body at the base (head: ln_f and the head), one body pass
// serves both perturbed points (head_logits on its ln_f input); the step is the two-point
// estimate of whole forward passes to rounding, and both points still count as passes.
TEST(MezoLearner, HeadSubspaceSharesTheBodyPassAndTakesTheSameStep) {
  GptConfig model = tiny_model();
  model.tied_head = false;  // a tied head is the token embedding, part of the body
  const auto stream = MarkovSource{model.vocab_size, 0.75}.sample(200, 5);
  const TokenBatch batch = batch_from(stream, 0, 2, 16);
  MezoConfig config;
  config.schedule.learning_rate = 1e-3;
  config.epsilon = 1e-3;
  config.subspace.kind = SubspaceKind::head;
  MezoLearner learner(config, model, 23);
  const ParameterSubspace subspace(config.subspace, GptParameters<double>::init(model, 23));
  ASSERT_TRUE(subspace.body_fixed());
  const Eigen::VectorXd u0 = learner.coordinates();
  const StepReport r = learner.step(batch);
  EXPECT_EQ(r.forward_passes, 2);

  const Eigen::VectorXd z = MezoLearner::direction(23, 1, u0.size());
  GptParameters<double> p = learner.parameters();
  subspace.embed(u0 + 1e-3 * z, p);
  const double plus = testing::mean_nll(p, batch);  // whole forward passes
  subspace.embed(u0 - 1e-3 * z, p);
  const double minus = testing::mean_nll(p, batch);
  const double g = (plus - minus) / 2e-3;
  EXPECT_NEAR(learner.last_projected_gradient(), g, 1e-7 * std::abs(g) + 1e-10);
  EXPECT_NEAR(r.nll_before, 0.5 * (plus + minus), 1e-12);
  EXPECT_LT((learner.coordinates() - (u0 - (1e-3 * g) * z)).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(MezoLearner, ReproducibleFromTheSeed) {
  const GptConfig model = tiny_model();
  const auto stream = MarkovSource{model.vocab_size, 0.75}.sample(2000, 4);
  MezoConfig config;
  config.schedule.learning_rate = 1e-3;
  const auto run = [&](std::uint64_t seed) {
    MezoLearner learner(config, model, seed);
    for (int s = 0; s < 5; ++s)
      learner.step(batch_from(stream, static_cast<std::size_t>(s * 32), 2, 16));
    return Eigen::VectorXd(learner.parameters().flatten());
  };
  const Eigen::VectorXd a = run(5), b = run(5), c = run(6);
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == c);
}

TEST(MezoLearner, BeatsTheUnigramReferenceOnHeldOutData) {
  // Budget: 300 steps of 4 sequences x 16 tokens (19200 training tokens, 600 forward passes)
  // on the head subspace of an untied-head model (576 coordinates), lr 1e-2, eps 1e-3.
  GptConfig model = tiny_model();
  model.tied_head = false;
  const MarkovSource source{model.vocab_size, 0.75};
  const auto train = source.sample(40000, 1);
  const auto held_out = source.sample(4000, 2);
  MezoConfig config;
  config.schedule.learning_rate = 1e-2;
  config.epsilon = 1e-3;
  config.subspace.kind = SubspaceKind::head;
  MezoLearner learner(config, model, 7);
  std::vector<std::int32_t> seen;
  const int steps = 300;
  for (int s = 0; s < steps; ++s) {
    const TokenBatch b = batch_from(train, static_cast<std::size_t>((s * 64) % 39000), 4, 16);
    ASSERT_FALSE(learner.step(b).skipped);
    seen.insert(seen.end(), b.targets.begin(), b.targets.end());
  }
  const TokenBatch test = batch_from(held_out, 0, 16, 16);
  const double unigram = unigram_nll(seen, test.targets, model.vocab_size);
  const double after = testing::mean_nll(learner.parameters(), test);
  std::cout << "mezo held-out NLL: unigram " << unigram << ", after " << after << "\n";
  EXPECT_LT(after, unigram - 0.1);
}

TEST(MezoLearner, StateRoundTripContinuesBitwise) {
  const GptConfig model = tiny_model();
  const auto train = MarkovSource{model.vocab_size, 0.75}.sample(2000, 3);
  MezoConfig config;
  config.schedule.learning_rate = 1e-2;
  config.weight_decay = 0.01;
  config.subspace.kind = SubspaceKind::random;
  config.subspace.dimension = 16;
  const auto batch = [&](int s) {
    return batch_from(train, static_cast<std::size_t>(s * 32), 2, 16);
  };
  MezoLearner straight(config, model, 9);
  for (int s = 0; s < 4; ++s) straight.step(batch(s));
  MezoLearner first(config, model, 9);
  for (int s = 0; s < 2; ++s) first.step(batch(s));
  MezoLearner resumed(config, model, 1234);  // the state carries the seed and the step
  resumed.restore(first.state());
  for (int s = 2; s < 4; ++s) resumed.step(batch(s));
  EXPECT_TRUE(resumed.parameters().flatten() == straight.parameters().flatten());
  LearnerState broken = first.state();
  broken.counters.erase("seed");
  EXPECT_THROW(resumed.restore(broken), std::invalid_argument);
}

TEST(MezoLearner, EmulatedRanksTakeTheGlobalBatchStep) {
  const GptConfig model = tiny_model();
  const auto train = MarkovSource{model.vocab_size, 0.75}.sample(4000, 5);
  MezoConfig config;
  config.schedule.learning_rate = 1e-2;
  const auto batch = [&](int s) {
    return batch_from(train, static_cast<std::size_t>(s * 64), 4, 16);
  };
  MezoLearner single(config, model, 11);
  for (int s = 0; s < 3; ++s) single.step(batch(s));
  std::vector<Eigen::VectorXd> result(2);
  testing::run_ranks(2, [&](int rank, LmCollectives c) {
    MezoLearner learner(config, model, 11, c);
    for (int s = 0; s < 3; ++s) learner.step(testing::share_of(batch(s), 2 * rank, 2));
    result[static_cast<std::size_t>(rank)] = learner.parameters().flatten();
  });
  EXPECT_TRUE(result[0] == result[1]);
  EXPECT_LT((result[0] - single.parameters().flatten()).cwiseAbs().maxCoeff(), 1e-10);
}

TEST(MezoLearner, ConfigKeysAreCheckedAndTheFactoryBuildsIt) {
  const YAML::Node good = YAML::Load(
      "{type: mezo, learning_rate: 1.0e-6, epsilon: 1.0e-3, weight_decay: 0.0, "
      "subspace: {type: last_blocks, blocks: 1}}");
  const MezoConfig c = parse_mezo_config(good);
  EXPECT_EQ(c.subspace.kind, SubspaceKind::last_blocks);
  const auto learner = make_language_learner(good, tiny_model(), 1, {});
  EXPECT_EQ(learner->name(), "mezo");
  EXPECT_EQ(learner->derivative_label(), "reverse-free (zeroth-order SPSA, forward passes only)");
  const auto message = [](const std::string& yaml) {
    try {
      parse_mezo_config(YAML::Load(yaml));
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("{type: mezo, eps: 0.1}").find("learner.eps"), std::string::npos);
  EXPECT_NE(message("{type: mezo, epsilon: 0}").find("learner.epsilon"), std::string::npos);
  EXPECT_NE(message("{type: mezo, learning_rate: -1}").find("learner.learning_rate"),
            std::string::npos);
}

}  // namespace
}  // namespace kwm::lm
