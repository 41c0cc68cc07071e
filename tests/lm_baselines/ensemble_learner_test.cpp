// kwm-ensemble on a tiny GPT: learns a Markov source past the unigram reference, restarts bit
// for bit, gives the same ensemble on R emulated ranks as on one, and checks its config.
#include "core/lm/learners/ensemble_learner.hpp"

#include <gtest/gtest.h>

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

EnsembleConfig small_ensemble(int members) {
  EnsembleConfig c;
  c.members = members;
  c.initial_std = 0.1;
  c.observation = EnsembleObservation::nll_residual;
  c.observation_noise = 0.3;
  c.process_noise = 0.02;
  c.perturb_observations = false;
  return c;
}

bool same_parameters(const GptParameters<double>& a, const GptParameters<double>& b) {
  return a.flatten() == b.flatten();
}

TEST(EnsembleLearner, BeatsTheUnigramReferenceOnHeldOutData) {
  // Budget: J = 16 members on the head subspace of an untied-head model (576 coordinates), 80
  // steps of 4 sequences x 16 tokens (5120 training tokens, 17 forward passes per step).
  GptConfig model = tiny_model();
  model.tied_head = false;
  const MarkovSource source{model.vocab_size, 0.75};
  const auto train = source.sample(40000, 1);
  const auto held_out = source.sample(4000, 2);
  EnsembleConfig config = small_ensemble(16);
  config.subspace.kind = SubspaceKind::head;
  EnsembleLearner learner(config, model, 7);
  const int steps = 80, sequences = 4, length = 16;
  std::vector<std::int32_t> seen;
  for (int s = 0; s < steps; ++s) {
    const TokenBatch b =
        batch_from(train, static_cast<std::size_t>(s * sequences * length), sequences, length);
    const StepReport r = learner.step(b);
    ASSERT_FALSE(r.skipped) << "step " << s;
    EXPECT_EQ(r.forward_passes, 17);
    EXPECT_EQ(r.transposed_jacobian_passes, 0);
    seen.insert(seen.end(), b.targets.begin(), b.targets.end());
  }
  const TokenBatch test = batch_from(held_out, 0, 16, length);
  const double unigram = unigram_nll(seen, test.targets, model.vocab_size);
  const double before = testing::mean_nll(GptParameters<double>::init(model, 7), test);
  const double after = testing::mean_nll(learner.parameters(), test);
  std::cout << "kwm-ensemble held-out NLL: init " << before << ", unigram " << unigram << ", after "
            << after << "\n";
  EXPECT_LT(after, unigram - 0.1);
  EXPECT_LT(after, before - 0.1);
}

TEST(EnsembleLearner, StateRoundTripContinuesBitwise) {
  const GptConfig model = tiny_model();
  const auto train = MarkovSource{model.vocab_size, 0.75}.sample(2000, 3);
  EnsembleConfig config = small_ensemble(6);
  config.inflation = 1.05;
  config.perturb_observations = true;  // exercises every random stream
  config.subspace.kind = SubspaceKind::last_blocks;
  const auto batch = [&](int s) {
    return batch_from(train, static_cast<std::size_t>(s * 32), 2, 16);
  };
  EnsembleLearner straight(config, model, 9);
  for (int s = 0; s < 4; ++s) straight.step(batch(s));

  EnsembleLearner first(config, model, 9);
  for (int s = 0; s < 2; ++s) first.step(batch(s));
  const LearnerState saved = first.state();
  EnsembleLearner resumed(config, model, 123);  // another seed: the state carries the seed
  resumed.restore(saved);
  for (int s = 2; s < 4; ++s) resumed.step(batch(s));
  EXPECT_TRUE(resumed.members() == straight.members());
  EXPECT_TRUE(same_parameters(resumed.parameters(), straight.parameters()));

  LearnerState missing = saved;
  missing.tensors.erase("member.3");
  EXPECT_THROW(resumed.restore(missing), std::invalid_argument);
  LearnerState wrong = saved;
  wrong.counters["members"] = 5;
  EXPECT_THROW(resumed.restore(wrong), std::invalid_argument);
}

TEST(EnsembleLearner, EmulatedRanksGiveTheSameEnsembleAsOneRank) {
  // One rank sees the whole batch of 6 sequences; R ranks see contiguous shares of it and run
  // J / R members each. The ensemble must be bit-for-bit the same.
  const GptConfig model = tiny_model();
  const auto train = MarkovSource{model.vocab_size, 0.75}.sample(4000, 5);
  EnsembleConfig config = small_ensemble(7);
  config.inflation = 1.02;
  config.perturb_observations = true;
  config.observation = EnsembleObservation::target_probability;
  const auto batch = [&](int s) {
    return batch_from(train, static_cast<std::size_t>(s * 96), 6, 16);
  };
  const int steps = 3;
  EnsembleLearner single(config, model, 11);
  for (int s = 0; s < steps; ++s) single.step(batch(s));

  for (const int ranks : {2, 3}) {
    std::vector<Eigen::MatrixXd> members(static_cast<std::size_t>(ranks));
    std::vector<Eigen::VectorXd> means(static_cast<std::size_t>(ranks));
    std::vector<LearnerState> states(static_cast<std::size_t>(ranks));
    testing::run_ranks(ranks, [&](int rank, LmCollectives c) {
      EnsembleLearner learner(config, model, 11, c);
      const int first = rank * 6 / ranks, count = (rank + 1) * 6 / ranks - first;
      for (int s = 0; s < steps; ++s) learner.step(testing::share_of(batch(s), first, count));
      members[static_cast<std::size_t>(rank)] = learner.members();
      means[static_cast<std::size_t>(rank)] = learner.parameters().flatten();
      states[static_cast<std::size_t>(rank)] = learner.state();
    });
    for (int r = 0; r < ranks; ++r) {
      EXPECT_TRUE(members[static_cast<std::size_t>(r)] == single.members())
          << ranks << " ranks, rank " << r;
      EXPECT_TRUE(means[static_cast<std::size_t>(r)] == single.parameters().flatten());
    }
    // The union of the ranks' states restores a single-rank learner.
    LearnerState all;
    for (const auto& s : states) {
      all.tensors.insert(s.tensors.begin(), s.tensors.end());
      all.counters.insert(s.counters.begin(), s.counters.end());
    }
    EnsembleLearner restored(config, model, 11);
    restored.restore(all);
    EXPECT_TRUE(restored.members() == single.members());
  }
}

// With a head subspace one pass of the mean over the gathered batch serves every member's body
// and, on each rank's own columns, that rank's prequential loss: every rank reports the mean NLL
// of its share before the step, counts one pass for the mean and one per member it runs, and the
// ensemble is the single rank's. A rank without members (3 ranks, 2 members) scores its share by
// a pass of its own. The same for lora on the head with fixed layer norms, whose members' logits
// are the shared W_0 h plus their rank-r corrections.
TEST(EnsembleLearner, SharedBodyPassGivesEachRankItsOwnPrequentialLoss) {
  GptConfig model = tiny_model();
  model.tied_head = false;  // a tied head is the token embedding, part of the body
  const auto train = MarkovSource{model.vocab_size, 0.75}.sample(2000, 5);
  SubspaceConfig fixed_norms;
  fixed_norms.kind = SubspaceKind::lora;
  fixed_norms.blocks = 0;
  fixed_norms.layer_norms = false;
  SubspaceConfig head;
  head.kind = SubspaceKind::head;
  for (const SubspaceConfig& subspace : {head, fixed_norms}) {
    EnsembleConfig config = small_ensemble(2);
    config.subspace = subspace;
    ASSERT_TRUE(ParameterSubspace(subspace, GptParameters<double>::init(model, 11)).body_fixed());
    const TokenBatch whole = batch_from(train, 0, 6, 16);
    EnsembleLearner single(config, model, 11);
    const GptParameters<double> before = single.parameters();
    const StepReport one = single.step(whole);
    EXPECT_EQ(one.forward_passes, 3);
    EXPECT_NEAR(one.nll_before, testing::mean_nll(before, whole), 1e-12);
    EXPECT_FALSE(single.parameters().flatten() == before.flatten()) << describe(subspace);
    for (const int ranks : {2, 3}) {
      testing::run_ranks(ranks, [&](int rank, LmCollectives c) {
        EnsembleLearner learner(config, model, 11, c);
        const int first = rank * 6 / ranks, count = (rank + 1) * 6 / ranks - first;
        const TokenBatch share = testing::share_of(whole, first, count);
        const StepReport r = learner.step(share);
        const int members = (rank + 1) * 2 / ranks - rank * 2 / ranks;
        const std::string where = describe(subspace) + ", " + std::to_string(ranks) +
                                  " ranks, rank " + std::to_string(rank);
        EXPECT_EQ(r.forward_passes, 1 + members) << where;
        EXPECT_NEAR(r.nll_before, testing::mean_nll(before, share), 1e-12) << where;
        EXPECT_TRUE(learner.members() == single.members()) << where;
      });
    }
  }
}

TEST(EnsembleLearner, SubspacesMoveOnlyTheirParameters) {
  const GptConfig model = tiny_model(32, 16, 2);
  const auto init = GptParameters<double>::init(model, 4);
  SubspaceConfig head;
  head.kind = SubspaceKind::head;
  const ParameterSubspace hs(head, init);
  // Tied head: token embedding + head bias + ln_f gain and bias.
  EXPECT_EQ(hs.dimension(), 32 * 16 + 32 + 2 * 16);
  GptParameters<double> moved = init.zeros_like();
  hs.embed(hs.origin() + Eigen::VectorXd::Ones(hs.dimension()), moved);
  EXPECT_TRUE(moved.position_embedding == init.position_embedding);
  EXPECT_TRUE(moved.blocks[1].fc.weight == init.blocks[1].fc.weight);
  EXPECT_TRUE(moved.ln_f.gain.isApprox((init.ln_f.gain.array() + 1).matrix()));

  SubspaceConfig last;
  last.kind = SubspaceKind::last_blocks;
  last.blocks = 1;
  const ParameterSubspace ls(last, init);
  hs.embed(hs.origin(), moved);
  EXPECT_TRUE(moved.flatten() == init.flatten());
  ls.embed(ls.origin() + Eigen::VectorXd::Ones(ls.dimension()), moved);
  EXPECT_TRUE(moved.blocks[0].qkv.weight == init.blocks[0].qkv.weight);
  EXPECT_FALSE(moved.blocks[1].qkv.weight == init.blocks[1].qkv.weight);
  last.blocks = 3;
  EXPECT_THROW(ParameterSubspace(last, init), std::invalid_argument);

  SubspaceConfig random;
  random.kind = SubspaceKind::random;
  random.dimension = 5;
  const ParameterSubspace rs(random, init);
  EXPECT_EQ(rs.dimension(), 5);
  rs.embed(Eigen::VectorXd::Zero(5), moved);
  EXPECT_TRUE(moved.flatten() == init.flatten());
}

TEST(EnsembleLearner, ConfigKeysAreCheckedAndTheFactoryBuildsIt) {
  const GptConfig model = tiny_model();
  const YAML::Node good = YAML::Load(
      "{type: kwm-ensemble, members: 4, subspace: {type: random, dimension: 8, seed: 3}, "
      "initial_std: 0.1, observation_noise: 2.0, inflation: 1.01, process_noise: 0.001, "
      "perturb_observations: false}");
  const EnsembleConfig c = parse_ensemble_config(good);
  EXPECT_EQ(c.members, 4);
  EXPECT_EQ(c.subspace.kind, SubspaceKind::random);
  EXPECT_EQ(c.subspace.dimension, 8);
  EXPECT_FALSE(c.perturb_observations);
  const auto learner = make_language_learner(good, model, 1, {});
  EXPECT_EQ(learner->name(), "kwm-ensemble");
  EXPECT_EQ(learner->derivative_label(),
            "reverse-free (ensemble Kalman inversion, forward passes only)");

  const auto message = [](const std::string& yaml) {
    try {
      parse_ensemble_config(YAML::Load(yaml));
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("{type: kwm-ensemble, member: 4}").find("learner.member"), std::string::npos);
  EXPECT_NE(message("{type: kwm-ensemble, members: 1}").find("learner.members"), std::string::npos);
  EXPECT_NE(message("{type: kwm-ensemble, observation: logits}").find("learner.observation"),
            std::string::npos);
  EXPECT_NE(message("{type: kwm-ensemble, inflation: 0.9}").find("learner.inflation"),
            std::string::npos);
  EXPECT_NE(message("{type: kwm-ensemble, subspace: lora}").find("learner.subspace"),
            std::string::npos);
  EXPECT_NE(message("{type: kwm-ensemble, subspace: {type: head, blocks: 2}}")
                .find("learner.subspace.blocks"),
            std::string::npos);
  EXPECT_NE(message("{type: kwm-ensemble, subspace: last_blocks}").find("learner.subspace"),
            std::string::npos);
}

}  // namespace
}  // namespace kwm::lm
