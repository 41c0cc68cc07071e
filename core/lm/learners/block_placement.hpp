// Which rank owns which Kalman block of an LM learner: greedy longest-processing-time on a cost
// per block (d_in^3 for a shared-row factor solve), deterministic and independent of anything but
// the costs and the rank count, so every rank computes the same placement and a checkpoint
// written on N ranks can be read on M. (The same rule as distributed/placement.hpp, restated here
// because core/ must not depend on distributed/.)
#pragma once

#include <vector>

namespace kwm::lm {

// owner[i] is the rank of block i. Blocks in descending cost (ties: ascending index) each go to the
// least-loaded rank (ties: lowest rank). Throws std::invalid_argument for ranks < 1 or a negative
// or non-finite cost.
std::vector<int> place_blocks_lpt(const std::vector<double>& costs, int ranks);

}  // namespace kwm::lm
