// Block placement: which rank owns which parameter block. Greedy longest-processing-time on a
// per-block cost, deterministic and recomputed at start, so a checkpoint written on N ranks can be
// loaded on any M (global block ids never depend on the rank count).
#pragma once

#include <cstdint>
#include <vector>

namespace kwm {

struct BlockCost {
  std::int64_t block_id = 0;
  double cost = 0.0;  // e.g. n^2 (memory, downdate) or n^3 (factor refresh)
};

struct Placement {
  std::vector<int> owner;         // owner[i] is the rank of costs[i] (input order)
  std::vector<double> rank_cost;  // total cost per rank
  // max rank cost / mean rank cost: 1.0 is perfect balance
  double imbalance() const;
  // Indices (into the input) of the blocks `rank` owns, ascending by block id.
  std::vector<std::size_t> blocks_of(int rank, const std::vector<BlockCost>& costs) const;
};

// LPT: blocks in descending cost (ties by ascending block id) each go to the least-loaded rank
// (ties to the lowest rank). Throws std::invalid_argument for ranks < 1 or a negative cost.
Placement place_blocks(const std::vector<BlockCost>& costs, int ranks);

}  // namespace kwm
