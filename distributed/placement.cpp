// Greedy LPT placement (Graham 1969: within 4/3 of the optimal makespan).
#include "distributed/placement.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

namespace kwm {

double Placement::imbalance() const {
  if (rank_cost.empty()) return 1.0;
  const double total = std::accumulate(rank_cost.begin(), rank_cost.end(), 0.0);
  if (total <= 0.0) return 1.0;
  const double mean = total / double(rank_cost.size());
  return *std::max_element(rank_cost.begin(), rank_cost.end()) / mean;
}

std::vector<std::size_t> Placement::blocks_of(int rank, const std::vector<BlockCost>& costs) const {
  std::vector<std::size_t> mine;
  for (std::size_t i = 0; i < owner.size(); ++i)
    if (owner[i] == rank) mine.push_back(i);
  std::sort(mine.begin(), mine.end(),
            [&](std::size_t a, std::size_t b) { return costs[a].block_id < costs[b].block_id; });
  return mine;
}

Placement place_blocks(const std::vector<BlockCost>& costs, int ranks) {
  if (ranks < 1)
    throw std::invalid_argument("placement: ranks must be >= 1; got " + std::to_string(ranks));
  std::vector<std::size_t> order(costs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  for (const auto& c : costs)
    if (!(c.cost >= 0.0))
      throw std::invalid_argument("placement: block " + std::to_string(c.block_id) +
                                  " has a negative or NaN cost");
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (costs[a].cost != costs[b].cost) return costs[a].cost > costs[b].cost;
    return costs[a].block_id < costs[b].block_id;
  });
  Placement p;
  p.owner.assign(costs.size(), 0);
  p.rank_cost.assign(std::size_t(ranks), 0.0);
  for (std::size_t i : order) {
    const auto least = std::min_element(p.rank_cost.begin(), p.rank_cost.end());
    p.owner[i] = int(least - p.rank_cost.begin());
    *least += costs[i].cost;
  }
  return p;
}

}  // namespace kwm
