// Placement: deterministic, balanced within LPT's bound, every block owned exactly once.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

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

// The shipped configs: shipped_config_balance_test.cpp.

TEST(Placement, RejectsBadInput) {
  EXPECT_THROW(place_blocks({{0, 1.0}}, 0), std::invalid_argument);
  EXPECT_THROW(place_blocks({{0, -1.0}}, 2), std::invalid_argument);
}

}  // namespace
}  // namespace kwm
