// adamw: two steps against a hand-computed AdamW update with central-difference gradients, the
// schedule, learning past the unigram reference, state round trip, emulated ranks, config keys.
#include "core/lm/learners/adamw_learner.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/lm/learners/learner_factory.hpp"
#include "core/lm/learners/unigram_baseline.hpp"
#include "tests/lm_baselines/lm_test_support.hpp"

namespace kwm::lm {
namespace {

using testing::batch_from;
using testing::MarkovSource;
using testing::tiny_model;

// Central differences of the mean NLL, one parameter at a time.
Eigen::VectorXd numerical_gradient(const GptParameters<double>& at, const TokenBatch& batch) {
  const Eigen::VectorXd theta = at.flatten();
  GptParameters<double> p = at;
  Eigen::VectorXd g(theta.size());
  const double h = 1e-5;
  for (Eigen::Index i = 0; i < theta.size(); ++i) {
    Eigen::VectorXd t = theta;
    t(i) += h;
    p.unflatten(t);
    const double plus = testing::mean_nll(p, batch);
    t(i) -= 2 * h;
    p.unflatten(t);
    const double minus = testing::mean_nll(p, batch);
    g(i) = (plus - minus) / (2 * h);
  }
  return g;
}

TEST(AdamWLearner, TwoStepsMatchTheHandComputedUpdate) {
  GptConfig model = tiny_model(8, 4, 1);
  model.context = 4;
  const auto stream = MarkovSource{8, 0.75}.sample(64, 2);
  AdamWConfig config;
  config.schedule.learning_rate = 0.01;
  config.schedule.warmup_steps = 2;  // lr_1 = 0.005, lr_2 = 0.01
  config.beta1 = 0.8;
  config.beta2 = 0.9;
  config.epsilon = 1e-3;  // keeps the finite-difference error out of g / (|g| + eps)
  config.weight_decay = 0.1;
  AdamWLearner learner(config, model, 3);
  Eigen::VectorXd mask(learner.parameters().size());
  {
    Eigen::Index at = 0;
    for (const auto& t : learner.parameters().tensors()) {
      const bool decays = t.name == "token_embedding" || t.name == "position_embedding" ||
                          t.name.find(".weight") != std::string::npos;
      mask.segment(at, t.size()).setConstant(decays ? 1.0 : 0.0);
      at += t.size();
    }
  }
  Eigen::VectorXd theta = learner.parameters().flatten();
  Eigen::VectorXd m = Eigen::VectorXd::Zero(theta.size()), v = m;
  const double lrs[2] = {0.005, 0.01};
  for (int t = 1; t <= 2; ++t) {
    const TokenBatch batch = batch_from(stream, static_cast<std::size_t>(8 * t), 2, 4);
    const Eigen::VectorXd g = numerical_gradient(learner.parameters(), batch);
    const StepReport r = learner.step(batch);
    ASSERT_FALSE(r.skipped);
    EXPECT_EQ(r.forward_passes, 1);
    EXPECT_EQ(r.transposed_jacobian_passes, 1);
    // Central differences with h = 1e-5 are good to about 1e-8 here.
    EXPECT_LT((learner.last_gradient() - g).cwiseAbs().maxCoeff(), 1e-7) << "gradient, step " << t;
    EXPECT_DOUBLE_EQ(learner.last_learning_rate(), lrs[t - 1]);
    // torch.optim.AdamW, written out.
    const double lr = lrs[t - 1];
    m = 0.8 * m + 0.2 * g;
    v = 0.9 * v + 0.1 * g.cwiseAbs2();
    const double c1 = 1 - std::pow(0.8, t), c2 = 1 - std::pow(0.9, t);
    theta = theta.cwiseProduct((1.0 - lr * 0.1 * mask.array()).matrix());
    theta.array() -= lr / c1 * m.array() / (v.array().sqrt() / std::sqrt(c2) + 1e-3);
    EXPECT_LT((learner.parameters().flatten() - theta).cwiseAbs().maxCoeff(), 1e-8)
        << "parameters, step " << t;
  }
  // The update is not trivially small: each parameter moved by about lr.
  EXPECT_GT((learner.parameters().flatten() - GptParameters<double>::init(model, 3).flatten())
                .cwiseAbs()
                .maxCoeff(),
            0.005);
}

TEST(AdamWLearner, WarmupConstantAndCosineSchedules) {
  LearningRateSchedule s;
  s.learning_rate = 1.0;
  s.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(s.at(1), 0.25);
  EXPECT_DOUBLE_EQ(s.at(4), 1.0);
  EXPECT_DOUBLE_EQ(s.at(100), 1.0);
  s.kind = ScheduleKind::cosine;
  s.warmup_steps = 2;
  s.total_steps = 12;
  s.min_learning_rate = 0.1;
  EXPECT_DOUBLE_EQ(s.at(2), 1.0);
  EXPECT_NEAR(s.at(7), 0.55, 1e-15);  // half way: min + (lr - min) / 2
  EXPECT_NEAR(s.at(12), 0.1, 1e-15);
  EXPECT_NEAR(s.at(50), 0.1, 1e-15);
  s.total_steps = 2;
  EXPECT_THROW(s.validate("learner"), std::invalid_argument);
}

TEST(AdamWLearner, BeatsTheUnigramReferenceOnHeldOutData) {
  // Budget: 60 steps of 4 sequences x 16 tokens (3840 training tokens), lr 1e-2 constant.
  const GptConfig model = tiny_model();
  const MarkovSource source{model.vocab_size, 0.75};
  const auto train = source.sample(20000, 1);
  const auto held_out = source.sample(4000, 2);
  AdamWConfig config;
  config.schedule.learning_rate = 1e-2;
  AdamWLearner learner(config, model, 7);
  std::vector<std::int32_t> seen;
  for (int s = 0; s < 60; ++s) {
    const TokenBatch b = batch_from(train, static_cast<std::size_t>(s * 64), 4, 16);
    ASSERT_FALSE(learner.step(b).skipped);
    seen.insert(seen.end(), b.targets.begin(), b.targets.end());
  }
  const TokenBatch test = batch_from(held_out, 0, 16, 16);
  const double unigram = unigram_nll(seen, test.targets, model.vocab_size);
  const double after = testing::mean_nll(learner.parameters(), test);
  std::cout << "adamw held-out NLL: unigram " << unigram << ", after " << after << "\n";
  EXPECT_LT(after, unigram - 0.3);
}

TEST(AdamWLearner, StateRoundTripContinuesBitwise) {
  const GptConfig model = tiny_model();
  const auto train = MarkovSource{model.vocab_size, 0.75}.sample(2000, 3);
  AdamWConfig config;
  config.schedule.kind = ScheduleKind::cosine;
  config.schedule.warmup_steps = 1;
  config.schedule.total_steps = 6;
  config.weight_decay = 0.1;
  const auto batch = [&](int s) {
    return batch_from(train, static_cast<std::size_t>(s * 32), 2, 16);
  };
  AdamWLearner straight(config, model, 9);
  for (int s = 0; s < 4; ++s) straight.step(batch(s));
  AdamWLearner first(config, model, 9);
  for (int s = 0; s < 2; ++s) first.step(batch(s));
  AdamWLearner resumed(config, model, 77);
  resumed.restore(first.state());
  for (int s = 2; s < 4; ++s) resumed.step(batch(s));
  EXPECT_TRUE(resumed.parameters().flatten() == straight.parameters().flatten());
  LearnerState broken = first.state();
  broken.tensors.erase("second_moment");
  EXPECT_THROW(resumed.restore(broken), std::invalid_argument);
}

TEST(AdamWLearner, EmulatedRanksAverageTheGradientOverTheGlobalBatch) {
  const GptConfig model = tiny_model();
  const auto train = MarkovSource{model.vocab_size, 0.75}.sample(4000, 5);
  AdamWConfig config;
  config.schedule.learning_rate = 1e-2;
  const auto batch = [&](int s) {
    return batch_from(train, static_cast<std::size_t>(s * 64), 4, 16);
  };
  AdamWLearner single(config, model, 11);
  for (int s = 0; s < 3; ++s) single.step(batch(s));
  std::vector<Eigen::VectorXd> result(2);
  testing::run_ranks(2, [&](int rank, LmCollectives c) {
    AdamWLearner learner(config, model, 11, c);
    for (int s = 0; s < 3; ++s) learner.step(testing::share_of(batch(s), 2 * rank, 2));
    result[static_cast<std::size_t>(rank)] = learner.parameters().flatten();
  });
  EXPECT_TRUE(result[0] == result[1]);  // every rank takes the same step
  EXPECT_LT((result[0] - single.parameters().flatten()).cwiseAbs().maxCoeff(), 1e-9);
}

TEST(AdamWLearner, ConfigKeysAreCheckedAndTheFactoryBuildsIt) {
  const YAML::Node good = YAML::Load(
      "{type: adamw, learning_rate: 3.0e-4, schedule: cosine, warmup_steps: 10, total_steps: 100, "
      "min_learning_rate: 3.0e-5, beta1: 0.9, beta2: 0.95, epsilon: 1.0e-8, weight_decay: 0.1, "
      "weight_decay_on: all, gradient_clip: 1.0}");
  const AdamWConfig c = parse_adamw_config(good);
  EXPECT_EQ(c.schedule.kind, ScheduleKind::cosine);
  EXPECT_DOUBLE_EQ(c.beta2, 0.95);
  EXPECT_TRUE(c.decay_vectors);
  const auto learner = make_language_learner(good, tiny_model(), 1, {});
  EXPECT_EQ(learner->name(), "adamw");
  EXPECT_EQ(learner->derivative_label(), "backprop (baseline)");
  const auto message = [](const std::string& yaml) {
    try {
      parse_adamw_config(YAML::Load(yaml));
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("{type: adamw, lr: 0.1}").find("learner.lr"), std::string::npos);
  EXPECT_NE(message("{type: adamw, beta1: 1.0}").find("learner.beta1"), std::string::npos);
  EXPECT_NE(message("{type: adamw, schedule: linear}").find("learner.schedule"), std::string::npos);
  EXPECT_NE(message("{type: adamw, schedule: cosine}").find("learner.total_steps"),
            std::string::npos);
  EXPECT_NE(message("{type: adamw, weight_decay_on: biases}").find("learner.weight_decay_on"),
            std::string::npos);
}

}  // namespace
}  // namespace kwm::lm
