// How a KalmanSequenceLearner's covariance blocks are spread over ranks in the replicated-batch
// mode (ARCHITECTURE.md, the distributed step): every rank runs the same forward pass, each block
// has one owner that keeps its covariance and computes its share of H P H^T, one all-reduce joins
// the shares, owners update, and the owners' means are all-gathered. The distributed layer fills
// this in from a Communicator (distributed/replicated_batch.hpp); core sees only callbacks. The
// same callbacks carry the data-parallel mode's statistics (`sum`, docs/distributed.md).
#pragma once

#include <functional>
#include <vector>

#include "core/kalman/all_reduce.hpp"

namespace kwm {

// One covariance block as placement sees it: global id (= index, independent of the rank
// count), parameter count and a cost (n^2 dense, n diagonal).
struct BlockShape {
  std::int64_t id = 0;
  Index size = 0;
  double cost = 0.0;
};

struct LearnerSharding {
  int rank = 0;
  int ranks = 1;
  // Owner rank of every block (same order as `blocks`); called once, with identical input on
  // every rank, and must return the same answer on every rank. Empty: every block on rank 0.
  std::function<std::vector<int>(const std::vector<BlockShape>& blocks)> place;
  // Sum over ranks of an m x m partial in backend memory (the DEKF's S and the predictive
  // variance). Every rank must obtain the bitwise same sum (decisions are taken on it).
  AllReduceSum<double> reduce;
  // Host all-gather with a count per rank: rank r contributes counts[r] values; recv receives
  // them concatenated in rank order.
  std::function<void(const double* send, const std::vector<std::size_t>& counts, double* recv)>
      gather;
  // Host all-reduce sum of a plain buffer (not a matrix: nothing is packed), bitwise the same on
  // every rank. Used by the data-parallel fits, whose partial statistics it joins.
  std::function<void(double* data, std::size_t count)> sum;

  bool single_process() const { return ranks == 1; }
};

}  // namespace kwm
