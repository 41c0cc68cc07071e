// The low-rank-adapter subspace (closed form of the merged weights; with fixed layer norms, the
// low-rank member logits), the shared-body member logits, the ensemble's process-noise dynamics
// (centered draws keep the mean; the annealed schedule's closed form), and its member draws (own
// streams, or antithetic mirrored pairs).
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/lm/learners/ensemble_config.hpp"
#include "core/lm/learners/ensemble_draws.hpp"
#include "core/lm/learners/ensemble_learner.hpp"
#include "core/lm/learners/ensemble_random.hpp"
#include "core/lm/learners/ensemble_subspace.hpp"
#include "core/lm/learners/mezo_learner.hpp"
#include "core/lm/learners/unigram_baseline.hpp"
#include "tests/lm_baselines/lm_test_support.hpp"

namespace kwm::lm {
namespace {

using testing::batch_from;
using testing::MarkovSource;
using testing::tiny_model;

GptConfig untied_model(int layers = 2) {
  GptConfig model = tiny_model(32, 16, layers);
  model.tied_head = false;
  return model;
}

SubspaceConfig lora(Eigen::Index rank, int blocks) {
  SubspaceConfig c;
  c.kind = SubspaceKind::lora;
  c.rank = rank;
  c.blocks = blocks;
  c.seed = 9;
  return c;
}

TEST(LoraSubspace, DimensionCountsVectorsAndAdapters) {
  const GptConfig model = untied_model();
  const auto init = GptParameters<double>::init(model, 4);
  const Eigen::Index v = 32, d = 16, mlp = model.mlp_width(), r = 3;
  // Head only: ln_f (2d) and head.bias (V) in full; A (r x d) and B (V x r) for head.weight.
  EXPECT_EQ(ParameterSubspace(lora(r, 0), init).dimension(), 2 * d + v + r * (d + v));
  // Plus the last block: its layer norms and biases in full, and adapters on its four weights.
  const Eigen::Index block_vectors = 2 * d + 3 * d + d + 2 * d + mlp + d;
  const Eigen::Index block_adapters = r * ((d + 3 * d) + (d + d) + (d + mlp) + (mlp + d));
  EXPECT_EQ(ParameterSubspace(lora(r, 1), init).dimension(),
            2 * d + v + r * (d + v) + block_vectors + block_adapters);
  SubspaceConfig bad = lora(r, 3);
  EXPECT_THROW(ParameterSubspace(bad, init), std::invalid_argument);
  EXPECT_TRUE(ParameterSubspace(lora(r, 0), init).body_fixed());
  EXPECT_FALSE(ParameterSubspace(lora(r, 1), init).body_fixed());
  const GptConfig tied = tiny_model(32, 16, 2);  // the head weight is the token embedding
  EXPECT_FALSE(ParameterSubspace(lora(r, 0), GptParameters<double>::init(tied, 4)).body_fixed());
}

TEST(LoraSubspace, EmbedsTheMergedWeightsWPlusBA) {
  const GptConfig model = untied_model();
  const auto init = GptParameters<double>::init(model, 4);
  const Eigen::Index v = 32, d = 16, r = 2;
  const ParameterSubspace s(lora(r, 0), init);
  GptParameters<double> out = init.zeros_like();
  s.embed(s.origin(), out);  // B = 0 at the origin: the base itself
  EXPECT_TRUE(out.flatten() == init.flatten());

  // Layout: [ln_f.gain | ln_f.bias | head.bias | A (r x d) | B (V x r)].
  const Eigen::Index at = 2 * d + v;
  const Eigen::MatrixXd a = Eigen::Map<const Eigen::MatrixXd>(s.origin().data() + at, r, d);
  EXPECT_NEAR(a.squaredNorm() / static_cast<double>(r * d), 1.0 / static_cast<double>(r), 0.2);
  Eigen::MatrixXd b(v, r);
  for (Eigen::Index i = 0; i < v; ++i)
    for (Eigen::Index k = 0; k < r; ++k) b(i, k) = 0.01 * static_cast<double>(i - 3 * k);
  Eigen::VectorXd u = s.origin();
  u.segment(at + r * d, v * r) = Eigen::Map<const Eigen::VectorXd>(b.data(), v * r);
  u(2 * d + 5) += 0.5;  // head.bias[5]
  s.embed(u, out);
  EXPECT_LT((out.head.weight - (init.head.weight + b * a)).cwiseAbs().maxCoeff(), 1e-15);
  EXPECT_DOUBLE_EQ(out.head.bias(5), init.head.bias(5) + 0.5);
  EXPECT_TRUE(out.blocks[1].fc.weight == init.blocks[1].fc.weight);
  EXPECT_TRUE(out.token_embedding == init.token_embedding);

  // Adapters on the last block's weights too: moving every coordinate changes them, not block 0.
  const ParameterSubspace s1(lora(r, 1), init);
  s1.embed(s1.origin() + Eigen::VectorXd::Constant(s1.dimension(), 0.1), out);
  EXPECT_TRUE(out.blocks[0].qkv.weight == init.blocks[0].qkv.weight);
  EXPECT_FALSE(out.blocks[1].proj.weight == init.blocks[1].proj.weight);
  EXPECT_FALSE(out.blocks[1].ln2.gain == init.blocks[1].ln2.gain);
}

TEST(LoraSubspace, ParsesAndRejectsBadKeys) {
  const auto parse = [](const std::string& yaml) {
    return parse_subspace(YAML::Load(yaml), "learner.subspace");
  };
  const SubspaceConfig c = parse("{type: lora, rank: 2, seed: 5}");
  EXPECT_EQ(c.kind, SubspaceKind::lora);
  EXPECT_EQ(c.rank, 2);
  EXPECT_EQ(c.blocks, 0);  // head only by default
  EXPECT_EQ(describe(c), "lora(2, 0, 5)");
  EXPECT_EQ(parse("{type: lora, blocks: 1}").blocks, 1);
  const auto message = [&](const std::string& yaml) {
    try {
      parse(yaml);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("{type: lora, rank: 0}").find("learner.subspace.rank"), std::string::npos);
  EXPECT_NE(message("{type: lora, blocks: -1}").find("learner.subspace.blocks"), std::string::npos);
  EXPECT_NE(message("{type: head, rank: 2}").find("learner.subspace.rank"), std::string::npos);
  EXPECT_NE(message("lora").find("needs a mapping"), std::string::npos);
}

TEST(EnsembleLearner, SharedBodyHeadLogitsEqualTheFullForwardPass) {
  const GptConfig model = untied_model();
  const auto p = GptParameters<double>::init(model, 3);
  const MarkovSource source{model.vocab_size, 0.75};
  const TokenBatch b = batch_from(source.sample(200, 1), 0, 3, 16);
  ForwardCache<double> cache;
  const Matrix<double> full = forward(p, b, &cache);
  // Another head on the same body: the shortcut must use the new ln_f and head.
  GptParameters<double> q = p;
  q.ln_f.gain.array() += 0.3;
  q.head.weight.array() += 0.05;
  q.head.bias.array() -= 0.2;
  EXPECT_LT((head_logits(p, cache.ln_f.normalized) - full).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_LT((head_logits(q, cache.ln_f.normalized) - forward(q, b, nullptr)).cwiseAbs().maxCoeff(),
            1e-12);
}

// lora on the head with layer_norms: false keeps ln_f (and only ln_f, blocks 0) at the base, so
// the head input is fixed: a point's logits from the shared W_0 h plus its rank-r correction and
// bias equal the merged model's whole pass, for random coordinates (adapters and bias moved).
TEST(EnsembleLearner, FixedLayerNormLoraLogitsEqualTheMergedModel) {
  const GptConfig model = untied_model();
  const auto p = GptParameters<double>::init(model, 3);
  SubspaceConfig with_norms;
  with_norms.kind = SubspaceKind::lora;
  with_norms.blocks = 0;
  with_norms.rank = 2;
  SubspaceConfig fixed = with_norms;
  fixed.layer_norms = false;
  const ParameterSubspace moving(with_norms, p), subspace(fixed, p);
  EXPECT_FALSE(moving.head_input_fixed());
  ASSERT_TRUE(subspace.head_input_fixed());
  const Eigen::Index norms = 2 * model.d_model;  // ln_f's gain and bias
  EXPECT_EQ(subspace.dimension(), moving.dimension() - norms);
  EXPECT_EQ(describe(fixed), "lora(2, 0, 1, fixed layer norms)");
  EXPECT_THROW((void)moving.base_head_product(Matrix<double>::Zero(model.d_model, 1)),
               std::logic_error);

  const MarkovSource source{model.vocab_size, 0.75};
  const TokenBatch b = batch_from(source.sample(200, 1), 0, 3, 16);
  ForwardCache<double> cache;
  (void)forward(p, b, &cache);
  const Matrix<double>& h = cache.linear.back().input;
  const Matrix<double> shared = subspace.base_head_product(h);
  GptParameters<double> merged = p;
  for (const std::uint64_t seed : {std::uint64_t{1}, std::uint64_t{2}}) {
    const Eigen::VectorXd u =
        subspace.origin() + 0.3 * counter_normal_vector(seed, subspace.dimension());
    subspace.embed(u, merged);
    EXPECT_TRUE(merged.ln_f.gain == p.ln_f.gain && merged.ln_f.bias == p.ln_f.bias);
    EXPECT_FALSE(merged.head.bias == p.head.bias);
    const Matrix<double> want = forward(merged, b, nullptr);
    EXPECT_LT((subspace.low_rank_head_logits(u, h, shared) - want).cwiseAbs().maxCoeff(), 1e-12);
  }
  const auto parse = [](const std::string& yaml) {
    return parse_subspace(YAML::Load(yaml), "learner.subspace");
  };
  EXPECT_FALSE(parse("{type: lora, rank: 2, layer_norms: false}").layer_norms);
  EXPECT_TRUE(parse("{type: lora, rank: 2}").layer_norms);
  EXPECT_THROW(parse("{type: head, layer_norms: false}"), std::invalid_argument);
}

EnsembleConfig noisy_ensemble(EnsembleConfig::ProcessNoiseMode mode) {
  EnsembleConfig c;
  c.members = 8;
  c.subspace.kind = SubspaceKind::head;
  c.process_noise = 0.05;
  c.process_noise_mode = mode;
  return c;
}

TEST(EnsembleLearner, CenteredProcessNoiseKeepsTheMeanAndRefreshesTheSpread) {
  const GptConfig model = untied_model(1);
  // Observation noise 1e12: the analysis moves the members by O(1e-12), the forecast is all.
  const MarkovSource source{model.vocab_size, 0.75};
  const TokenBatch b = batch_from(source.sample(200, 1), 0, 2, 16);
  for (const auto mode :
       {EnsembleConfig::ProcessNoiseMode::centered, EnsembleConfig::ProcessNoiseMode::walk}) {
    EnsembleConfig config = noisy_ensemble(mode);
    config.observation_noise = 1e12;
    EnsembleLearner learner(config, model, 5);
    const Eigen::VectorXd mean0 = learner.members().rowwise().mean();
    const Eigen::MatrixXd dev0 = learner.members().colwise() - mean0;
    const double spread0 = dev0.squaredNorm();
    for (int t = 0; t < 20; ++t) learner.step(b);
    const Eigen::VectorXd mean1 = learner.members().rowwise().mean();
    const double spread1 = (learner.members().colwise() - mean1).squaredNorm();
    const double moved = (mean1 - mean0).cwiseAbs().maxCoeff();
    // 20 draws of std 0.05 per member: (J - 1) 20 q^2 n more squared spread either way.
    const double n = static_cast<double>(learner.members().rows());
    EXPECT_NEAR((spread1 - spread0) / (7.0 * 20 * 0.05 * 0.05 * n), 1.0, 0.1);
    if (mode == EnsembleConfig::ProcessNoiseMode::centered) {
      EXPECT_LT(moved, 1e-9);
    } else {
      EXPECT_GT(moved, 0.05);  // the walk: std 0.05 sqrt(20 / 8) = 0.08 per coordinate
    }
  }
}

TEST(EnsembleLearner, AnnealedProcessNoiseFollowsItsSchedule) {
  EnsembleConfig c;
  c.process_noise = 0.04;
  EXPECT_DOUBLE_EQ(process_noise_std(c, 1000), 0.04);
  c.process_noise_halflife = 100;
  EXPECT_DOUBLE_EQ(process_noise_std(c, 100), 0.04 / std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(process_noise_std(c, 300), 0.02);
  const auto message = [](const std::string& yaml) {
    try {
      parse_ensemble_config(YAML::Load(yaml));
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("{process_noise_mode: drift}").find("learner.process_noise_mode"),
            std::string::npos);
  EXPECT_NE(message("{process_noise_halflife: -1}").find("learner.process_noise_halflife"),
            std::string::npos);
  const EnsembleConfig parsed =
      parse_ensemble_config(YAML::Load("{process_noise_mode: walk, process_noise_halflife: 50}"));
  EXPECT_EQ(parsed.process_noise_mode, EnsembleConfig::ProcessNoiseMode::walk);
  EXPECT_EQ(parsed.process_noise_halflife, 50.0);
}

// The members' draws, shared by the CPU and GPU learners: without antithetic, column j is member
// j's own stream bit for bit (the draws every earlier run and checkpoint made); with it, column
// 2k is member 2k's stream and column 2k + 1 its exact negative, an odd count is refused, and
// the draws are the same however many threads drew them (large draws use several).
TEST(EnsembleDraws, OwnStreamsOrMirroredPairs) {
  const std::uint64_t seed = 17;
  for (const Eigen::Index rows : {Eigen::Index{40}, Eigen::Index{20000}}) {  // one thread, several
    const Eigen::MatrixXd plain = member_draws(seed, RandomPurpose::process_noise, 3, rows, 6, 0.5);
    const Eigen::MatrixXd paired =
        member_draws(seed, RandomPurpose::process_noise, 3, rows, 6, 0.5, true);
    for (Eigen::Index j = 0; j < 6; ++j) {
      const Eigen::VectorXd own = normal_vector(
          stream_seed(seed, RandomPurpose::process_noise, 3, static_cast<std::uint64_t>(j)), rows,
          0.5);
      EXPECT_EQ(plain.col(j), own) << "column " << j;
      if (j % 2 == 0) {
        EXPECT_EQ(paired.col(j), own) << "column " << j;
      } else {
        EXPECT_EQ(paired.col(j), -paired.col(j - 1)) << "column " << j;
      }
    }
    EXPECT_LT(paired.rowwise().sum().cwiseAbs().maxCoeff(), 1e-15 * rows);
    EXPECT_GT(plain.rowwise().mean().cwiseAbs().maxCoeff(), 0.05);
  }
  EXPECT_THROW(member_draws(seed, RandomPurpose::process_noise, 3, 4, 5, 1.0, true),
               std::invalid_argument);
}

// learner.antithetic: the ensemble's mean starts at the origin (up to rounding), where eight
// independent draws move it by more than 0.1 in some coordinate; the process noise keeps the pairs
// mirrored; an odd member count is refused naming the key.
TEST(EnsembleLearner, AntitheticMembersStartAtTheOriginAndPairUp) {
  const GptConfig model = untied_model(1);
  const MarkovSource source{model.vocab_size, 0.75};
  const TokenBatch b = batch_from(source.sample(200, 1), 0, 2, 16);
  EnsembleConfig config = noisy_ensemble(EnsembleConfig::ProcessNoiseMode::centered);
  config.initial_std = 0.3;
  config.antithetic = true;
  EnsembleLearner paired(config, model, 5);
  config.antithetic = false;
  EnsembleLearner plain(config, model, 5);
  const auto origin = [&](const EnsembleLearner& learner) {
    return learner.members().rowwise().mean() -
           (learner.members().col(0) + learner.members().col(1)) / 2.0;
  };
  EXPECT_LT(origin(paired).cwiseAbs().maxCoeff(), 1e-12) << "pairs' midpoints are the mean";
  // Each pair's midpoint is the origin, and so is the mean.
  const Eigen::VectorXd start = (paired.members().col(0) + paired.members().col(1)) / 2.0;
  const Eigen::VectorXd paired_mean = paired.members().rowwise().mean();
  const Eigen::VectorXd plain_mean = plain.members().rowwise().mean();
  EXPECT_LT((paired_mean - start).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_GT((plain_mean - start).cwiseAbs().maxCoeff(), 0.1) << "8 draws of std 0.3";
  // The first forecast's process noise comes in mirrored pairs as well: with the analysis held
  // back (r = 1e12), the pairs stay mirrored about the mean.
  EnsembleConfig held = config;
  held.antithetic = true;
  held.observation_noise = 1e12;
  EnsembleLearner learner(held, model, 5);
  (void)learner.step(b);
  const Eigen::VectorXd mean = learner.members().rowwise().mean();
  for (Eigen::Index j = 0; j < 8; j += 2) {
    const Eigen::VectorXd sum = learner.members().col(j) + learner.members().col(j + 1);
    EXPECT_LT((sum - 2.0 * mean).cwiseAbs().maxCoeff(), 1e-9) << "pair " << j / 2;
  }
  try {
    (void)parse_ensemble_config(YAML::Load("{members: 7, antithetic: true}"));
    FAIL() << "an odd member count was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("learner.antithetic"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(parse_ensemble_config(YAML::Load("{members: 8, antithetic: true}")).antithetic);
  EXPECT_FALSE(parse_ensemble_config(YAML::Load("{members: 8}")).antithetic);
}

// Both forward-only learners learn through the adapters: a Markov source past the unigram.
TEST(LoraSubspace, EnsembleAndMezoLearnThroughTheAdapters) {
  const GptConfig model = untied_model(1);
  const MarkovSource source{model.vocab_size, 0.75};
  const auto train = source.sample(40000, 1);
  const TokenBatch test = batch_from(source.sample(4000, 2), 0, 16, 16);
  EnsembleConfig ec;
  ec.members = 16;
  ec.subspace = lora(4, 0);
  ec.observation_noise = 0.3;
  EnsembleLearner ensemble(ec, model, 7);
  MezoConfig mc;
  mc.subspace = lora(4, 0);
  mc.schedule.learning_rate = 1e-2;
  MezoLearner mezo(mc, model, 7);
  std::vector<std::int32_t> seen;
  for (int s = 0; s < 300; ++s) {
    const TokenBatch b = batch_from(train, static_cast<std::size_t>(s * 64), 4, 16);
    if (s < 80) {
      ASSERT_FALSE(ensemble.step(b).skipped);
    }
    ASSERT_FALSE(mezo.step(b).skipped);
    seen.insert(seen.end(), b.targets.begin(), b.targets.end());
  }
  const double unigram = unigram_nll(seen, test.targets, model.vocab_size);
  const double start = testing::mean_nll(GptParameters<double>::init(model, 7), test);
  const double ens = testing::mean_nll(ensemble.parameters(), test);
  const double zo = testing::mean_nll(mezo.parameters(), test);
  EXPECT_LT(ens, unigram) << "start " << start;
  EXPECT_LT(zo, start - 0.2) << "unigram " << unigram;
}

}  // namespace
}  // namespace kwm::lm
