// Deterministic LPT placement of learner blocks on ranks.
#include "core/lm/learners/block_placement.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace kwm::lm {

std::vector<int> place_blocks_lpt(const std::vector<double>& costs, int ranks) {
  if (ranks < 1)
    throw std::invalid_argument("block placement needs ranks >= 1; got " + std::to_string(ranks));
  for (std::size_t i = 0; i < costs.size(); ++i)
    if (!(costs[i] >= 0.0) || !std::isfinite(costs[i]))
      throw std::invalid_argument("block placement: cost of block " + std::to_string(i) +
                                  " must be finite and >= 0");
  std::vector<std::size_t> order(costs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return costs[a] > costs[b]; });
  std::vector<double> load(static_cast<std::size_t>(ranks), 0.0);
  std::vector<int> owner(costs.size(), 0);
  for (const std::size_t i : order) {
    // min_element returns the first minimum: ties go to the lowest rank.
    const auto lightest = std::min_element(load.begin(), load.end());
    owner[i] = static_cast<int>(lightest - load.begin());
    *lightest += costs[i];
  }
  return owner;
}

}  // namespace kwm::lm
