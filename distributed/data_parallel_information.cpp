// Data-parallel information-form step: packed statistics, one all-reduce, owners solve, gather.
#include "distributed/data_parallel_information.hpp"

#include <numeric>
#include <stdexcept>
#include <string>

#include "core/backend/host_transfer.hpp"
#include "distributed/packed_symmetric.hpp"
#include "distributed/placement.hpp"

namespace kwm {

DataParallelInformation::DataParallelInformation(
    Communicator& comm, const Eigen::VectorXd& prior_mean,
    const std::vector<Eigen::MatrixXd>& prior_information, const JitterConfig& jitter)
    : comm_(comm),
      backend_(make_backend<double>("cpu")),
      filter_(*backend_, jitter),
      mean_(prior_mean) {
  std::vector<BlockCost> costs;
  Eigen::Index at = 0;
  for (std::size_t b = 0; b < prior_information.size(); ++b) {
    const Eigen::Index n = prior_information[b].rows();
    if (prior_information[b].cols() != n || n == 0)
      throw std::invalid_argument("data-parallel information: block " + std::to_string(b) +
                                  " needs a square, non-empty prior information matrix");
    offsets_.push_back(at);
    sizes_.push_back(n);
    costs.push_back({static_cast<std::int64_t>(b), double(n) * double(n)});
    at += n;
  }
  if (at != prior_mean.size())
    throw std::invalid_argument("data-parallel information: the blocks hold " + std::to_string(at) +
                                " parameters but the prior mean has " +
                                std::to_string(prior_mean.size()));
  owners_ = place_blocks(costs, comm_.size()).owner;
  for (std::size_t b = 0; b < sizes_.size(); ++b) {
    statistics_.push_back(filter_.zero_statistics(sizes_[b]));
    if (owners_[b] != comm_.rank()) continue;
    owned_ids_.push_back(b);
    owned_.push_back(
        make_dense_block(*backend_, static_cast<BlockId>(b),
                         to_backend(*backend_, prior_mean.segment(offsets_[b], sizes_[b])),
                         to_backend(*backend_, prior_information[b]), Form::information));
  }
}

std::size_t DataParallelInformation::reduced_values() const {
  std::size_t count = 0;
  for (const Eigen::Index n : sizes_) count += packed_size(n) + static_cast<std::size_t>(n);
  return count;
}

bool DataParallelInformation::accumulate(const Eigen::MatrixXd& h, const Eigen::VectorXd& e,
                                         const Eigen::MatrixXd& r) {
  if (h.cols() != mean_.size())
    throw std::invalid_argument("data-parallel information: H has " + std::to_string(h.cols()) +
                                " columns for " + std::to_string(mean_.size()) + " parameters");
  if (!h.allFinite() || !e.allFinite() || !r.allFinite()) return false;
  const Tensor<double> e_t = to_backend(*backend_, e), r_t = to_backend(*backend_, r);
  for (std::size_t b = 0; b < sizes_.size(); ++b) {
    const Eigen::MatrixXd h_b = h.middleCols(offsets_[b], sizes_[b]);
    if (!filter_.accumulate(statistics_[b], to_backend(*backend_, h_b), e_t, r_t)) {
      // Only a non-SPD R gets here (finiteness was checked); it fails for the first block.
      return false;
    }
  }
  return true;
}

std::vector<UpdateStatus> DataParallelInformation::step(double lambda) {
  // One buffer: for every block, the packed upper triangle of sum H^T R^-1 H, then sum H^T R^-1 e.
  std::vector<double> packed(reduced_values());
  std::size_t at = 0;
  for (std::size_t b = 0; b < sizes_.size(); ++b) {
    at += pack_upper(to_host(*backend_, statistics_[b].precision), packed.data() + at);
    const Eigen::MatrixXd v = to_host(*backend_, statistics_[b].vector);
    for (Eigen::Index i = 0; i < v.rows(); ++i) packed[at++] = v(i, 0);
  }
  comm_.all_reduce_sum(packed.data(), packed.size());

  // Owners solve. Their means and statuses travel in one all-gather: n_b values, then the status.
  std::vector<std::size_t> counts(static_cast<std::size_t>(comm_.size()), 0);
  for (std::size_t b = 0; b < sizes_.size(); ++b)
    counts[static_cast<std::size_t>(owners_[b])] += static_cast<std::size_t>(sizes_[b]) + 1;
  std::vector<double> mine;
  at = 0;
  std::size_t next_owned = 0;
  for (std::size_t b = 0; b < sizes_.size(); ++b) {
    const Eigen::Index n = sizes_[b];
    if (owners_[b] != comm_.rank()) {
      at += packed_size(n) + static_cast<std::size_t>(n);
      continue;
    }
    Eigen::MatrixXd precision(n, n);
    at += unpack_symmetric(packed.data() + at, precision);
    const Eigen::VectorXd vector = Eigen::Map<const Eigen::VectorXd>(packed.data() + at, n);
    at += static_cast<std::size_t>(n);
    InformationStatistics<double> reduced;
    reduced.precision = to_backend(*backend_, precision);
    reduced.vector = to_backend(*backend_, vector);
    ParameterBlock<double>& block = owned_[next_owned++];
    const UpdateStatus status = filter_.apply(block, reduced, lambda);
    const Eigen::MatrixXd m = to_host(*backend_, block.mean);
    mine.insert(mine.end(), m.data(), m.data() + m.size());
    mine.push_back(static_cast<double>(static_cast<int>(status)));
  }
  std::vector<double> all(std::accumulate(counts.begin(), counts.end(), std::size_t{0}));
  comm_.all_gatherv(mine.data(), counts, all.data());

  std::vector<std::size_t> cursor(counts.size(), 0);
  for (std::size_t r = 1; r < counts.size(); ++r) cursor[r] = cursor[r - 1] + counts[r - 1];
  std::vector<UpdateStatus> statuses(sizes_.size());
  for (std::size_t b = 0; b < sizes_.size(); ++b) {
    std::size_t& from = cursor[static_cast<std::size_t>(owners_[b])];
    mean_.segment(offsets_[b], sizes_[b]) =
        Eigen::Map<const Eigen::VectorXd>(all.data() + from, sizes_[b]);
    from += static_cast<std::size_t>(sizes_[b]);
    statuses[b] = static_cast<UpdateStatus>(static_cast<int>(all[from++]));
  }
  for (auto& s : statistics_) {
    backend_->fill(s.precision, 0.0);
    backend_->fill(s.vector, 0.0);
    s.observations = s.rejected = 0;
  }
  return statuses;
}

}  // namespace kwm
