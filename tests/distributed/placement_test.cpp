// Placement: deterministic, balanced within LPT's bound, every block owned exactly once.
#include <gtest/gtest.h>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <string>

#include "core/learners/kalman/kalman_sequence_learner.hpp"
#include "core/models/model_io.hpp"
#include "distributed/placement.hpp"

namespace kwm {
namespace {

TEST(Placement, EveryBlockOwnedOnceAndDeterministic) {
  std::vector<BlockCost> costs;
  for (int i = 0; i < 37; ++i) costs.push_back({i, double((i * 7919) % 13 + 1)});
  for (int ranks = 1; ranks <= 5; ++ranks) {
    const Placement a = place_blocks(costs, ranks), b = place_blocks(costs, ranks);
    EXPECT_EQ(a.owner, b.owner);
    std::set<std::size_t> seen;
    for (int r = 0; r < ranks; ++r)
      for (auto i : a.blocks_of(r, costs)) EXPECT_TRUE(seen.insert(i).second);
    EXPECT_EQ(seen.size(), costs.size());
  }
}

TEST(Placement, ManyEqualDenseBlocksBalancePerfectly) {
  // 64 blocks of n = 1024..4096 (the Distributed issue's benchmark shape), cost n^2.
  std::vector<BlockCost> costs;
  for (int i = 0; i < 64; ++i) {
    const double n = 1024.0 * (1 + i % 4);
    costs.push_back({i, n * n});
  }
  for (int ranks : {1, 2, 3, 4}) EXPECT_LE(place_blocks(costs, ranks).imbalance(), 1.2) << ranks;
  EXPECT_DOUBLE_EQ(place_blocks(costs, 4).imbalance(), 1.0);
}

TEST(Placement, LptBoundHoldsForOneHugeBlock) {
  // One block dominates: the best possible makespan is that block, and LPT finds it.
  std::vector<BlockCost> costs = {{0, 100.0}, {1, 1.0}, {2, 1.0}, {3, 1.0}};
  const Placement p = place_blocks(costs, 2);
  EXPECT_DOUBLE_EQ(*std::max_element(p.rank_cost.begin(), p.rank_cost.end()), 100.0);
}

// The blocks of a shipped config's learner: model and learner sections of configs/NAME (one
// observed channel, no exogenous inputs, as in the sunspot configs).
std::vector<BlockCost> shipped_blocks(const std::string& name, const char* blocking = nullptr) {
  const YAML::Node root = YAML::LoadFile(std::string(KWM_SOURCE_DIR) + "/configs/" + name);
  YAML::Node model = YAML::Clone(root["model"]);
  model["n_in"] = 0;
  model["n_out"] = 1;
  YAML::Node learner = YAML::Clone(root["learner"]);
  if (blocking != nullptr) learner["blocking"] = blocking;
  KalmanSequenceLearner built(make_model(model), kalman_learner_config(learner));
  std::vector<BlockCost> costs;
  for (const BlockShape& b : built.block_shapes()) costs.push_back({b.id, b.cost});
  return costs;
}

// No placement can beat the largest block or the mean: max(largest, total / ranks) / mean.
double best_possible(const std::vector<BlockCost>& costs, int ranks) {
  double total = 0, largest = 0;
  for (const auto& c : costs) total += c.cost, largest = std::max(largest, c.cost);
  return std::max(largest, total / ranks) / (total / ranks);
}

TEST(Placement, ShippedModelsBalanceWithinTwentyPercent) {
  // The larger shipped config (per-unit blocks): within 1.2 at 2, 3 and 4 ranks.
  const auto large = shipped_blocks("sunspots_distributed.yaml");
  EXPECT_GT(large.size(), 100u);
  for (int ranks : {2, 3, 4}) EXPECT_LE(place_blocks(large, ranks).imbalance(), 1.2) << ranks;
  // The quickstart model with per-unit blocks: within 1.2 at 2, 3 and 4 ranks.
  const auto quick_units = shipped_blocks("quickstart.yaml", "per_unit");
  for (int ranks : {2, 3, 4}) EXPECT_LE(place_blocks(quick_units, ranks).imbalance(), 1.2) << ranks;
  // The quickstart as shipped (per-group: 8 blocks, two of 272 parameters hold 78% of the n^2
  // cost) balances within 1.2 at 2 and 3 ranks; at 4 ranks no placement can (the largest block
  // is 1.56 x the mean), and LPT reaches that bound exactly.
  const auto quick = shipped_blocks("quickstart.yaml");
  for (int ranks : {2, 3}) EXPECT_LE(place_blocks(quick, ranks).imbalance(), 1.2) << ranks;
  EXPECT_GT(best_possible(quick, 4), 1.2);
  EXPECT_DOUBLE_EQ(place_blocks(quick, 4).imbalance(), best_possible(quick, 4));
}

TEST(Placement, RejectsBadInput) {
  EXPECT_THROW(place_blocks({{0, 1.0}}, 0), std::invalid_argument);
  EXPECT_THROW(place_blocks({{0, -1.0}}, 2), std::invalid_argument);
}

}  // namespace
}  // namespace kwm
