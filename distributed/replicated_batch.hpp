// The replicated-batch sharded step (ARCHITECTURE.md, the distributed step): the LearnerSharding
// that spreads a KalmanSequenceLearner's blocks over a Communicator's ranks by LPT placement,
// all-reduces the m x m innovation statistics and all-gathers the owners' means.
#pragma once

#include <string>
#include <vector>

#include "core/learners/kalman/learner_sharding.hpp"
#include "distributed/communicator.hpp"

namespace kwm {

// host: MPI or single process (placement, the means' all-gather). device: where the learner's
// backend memory lives when that is a GPU (NCCL); null: the sums go through host too. Both must
// outlive the learner.
LearnerSharding replicated_batch_sharding(Communicator& host, Communicator* device = nullptr);

// One line per rank: its blocks, parameters, covariance doubles and cost share; then imbalance.
std::string describe_placement(const std::vector<BlockShape>& blocks,
                               const std::vector<int>& owners, int ranks);

}  // namespace kwm
