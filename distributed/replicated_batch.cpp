// LearnerSharding from Communicators: LPT placement on n^2 (dense) or n (diagonal) cost.
#include "distributed/replicated_batch.hpp"

#include <cmath>
#include <memory>
#include <sstream>
#include <vector>

#include "distributed/packed_symmetric.hpp"
#include "distributed/placement.hpp"

namespace kwm {

LearnerSharding replicated_batch_sharding(Communicator& host, Communicator* device) {
  LearnerSharding s;
  s.rank = host.rank();
  s.ranks = host.size();
  s.place = [ranks = s.ranks](const std::vector<BlockShape>& blocks) {
    std::vector<BlockCost> costs;
    costs.reserve(blocks.size());
    for (const BlockShape& b : blocks) costs.push_back({b.id, b.cost});
    return place_blocks(costs, ranks).owner;
  };
  Communicator* sums = device != nullptr ? device : &host;
  // What crosses ranks is the m x m partial H P H^T, a symmetric matrix: host buffers travel as
  // one packed triangle, m(m+1)/2 values (device buffers go whole: NCCL reduces them in place).
  s.reduce = [sums, packed = device == nullptr, buffer = std::make_shared<std::vector<double>>()](
                 double* data, Index count) {
    const auto m = static_cast<Index>(std::llround(std::sqrt(double(count))));
    if (!packed || sums->size() == 1 || m < 2 || m * m != count) {
      sums->all_reduce_sum(data, static_cast<std::size_t>(count));
      return;
    }
    Eigen::Map<Eigen::MatrixXd> square(data, m, m);
    buffer->resize(packed_size(m));
    pack_upper(square, buffer->data());
    sums->all_reduce_sum(buffer->data(), buffer->size());
    unpack_symmetric(buffer->data(), square);
  };
  s.sum = [&host](double* data, std::size_t count) { host.all_reduce_sum(data, count); };
  s.gather = [&host](const double* send, const std::vector<std::size_t>& counts, double* recv) {
    host.all_gatherv(send, counts, recv);
  };
  return s;
}

std::string describe_placement(const std::vector<BlockShape>& blocks,
                               const std::vector<int>& owners, int ranks) {
  std::vector<double> cost(static_cast<std::size_t>(ranks), 0.0);
  std::vector<std::int64_t> count(cost.size(), 0), parameters(cost.size(), 0),
      covariance(cost.size(), 0);
  std::vector<std::string> ids(cost.size());
  double total = 0.0;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const auto r = static_cast<std::size_t>(owners[b]);
    const auto n = static_cast<std::int64_t>(blocks[b].size);
    cost[r] += blocks[b].cost;
    total += blocks[b].cost;
    ++count[r];
    parameters[r] += n;
    // n^2 cost: a dense block (n x n doubles); otherwise its n variances.
    covariance[r] += blocks[b].cost == double(n) * double(n) ? n * n : n;
    if (!ids[r].empty()) ids[r] += ',';
    ids[r] += std::to_string(blocks[b].id);
  }
  std::ostringstream out;
  double worst = 0.0;
  for (std::size_t r = 0; r < cost.size(); ++r) {
    out << "rank " << r << ": " << count[r] << " blocks, " << parameters[r] << " parameters, "
        << covariance[r] << " covariance values, cost share " << (total > 0 ? cost[r] / total : 0.0)
        << ", ids [" << ids[r] << "]\n";
    worst = std::max(worst, cost[r]);
  }
  const double mean = total / double(ranks);
  out << "imbalance (max / mean cost) " << (mean > 0 ? worst / mean : 1.0);
  return out.str();
}

}  // namespace kwm
