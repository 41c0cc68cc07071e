// The data-parallel step in information form (ALGORITHMS.md section 3): every rank streams its own
// data (a contiguous shard or its own sequences) and accumulates, for every block, the sufficient
// statistics sum H^T R^-1 H and sum H^T R^-1 e; one all-reduce joins them (the symmetric matrices
// as packed triangles, all blocks in one buffer); each block's owner solves
// L <- lambda L + sum H^T R^-1 H, m <- m + L^-1 sum H^T R^-1 e; the owners' means are all-gathered.
//
// For blocks linear in their parameters this is exactly the serial Kalman / RLS posterior whatever
// the sharding. For nonlinear models it is one batched Gauss-Newton (EKF) step at the linearisation
// point where every rank computed its H and e, not the serial EKF, which relinearises after every
// observation: the two agree to first order in the step size (docs/distributed.md).
#pragma once

#include <Eigen/Core>
#include <memory>
#include <vector>

#include "core/kalman/information_filter.hpp"
#include "distributed/communicator.hpp"

namespace kwm {

class DataParallelInformation {
 public:
  // One dense information-form block per entry of `prior_information` (global id = index) with
  // prior mean prior_mean (concatenated in block order). Blocks are placed on ranks by LPT on n^2;
  // each rank keeps L_b only for the blocks it owns.
  DataParallelInformation(Communicator& comm, const Eigen::VectorXd& prior_mean,
                          const std::vector<Eigen::MatrixXd>& prior_information,
                          const JitterConfig& jitter = {});

  int owner(std::size_t block) const { return owners_[block]; }
  std::size_t block_count() const { return offsets_.size(); }
  Eigen::Index offset(std::size_t block) const { return offsets_[block]; }
  Eigen::Index size(std::size_t block) const { return sizes_[block]; }
  // The current mean over every block, identical on every rank after each step().
  const Eigen::VectorXd& mean() const { return mean_; }

  // Adds one observation y = h(theta) + v, v ~ N(0, R), linearised as H (m x P over every block)
  // and e = y - h(theta), to this rank's statistics of every block. False (nothing added) when
  // H, e or R is not finite or R is not positive definite.
  bool accumulate(const Eigen::MatrixXd& h, const Eigen::VectorXd& e, const Eigen::MatrixXd& r);

  // One all-reduce of every block's statistics, owners' information-form solve with forgetting
  // lambda, one all-gather of the means; local statistics are then zeroed. Every rank returns the
  // same statuses (decided on all-reduced values).
  std::vector<UpdateStatus> step(double lambda = 1.0);

  // Values one step() all-reduces: sum over blocks of n(n+1)/2 + n.
  std::size_t reduced_values() const;

 private:
  Communicator& comm_;
  std::unique_ptr<Backend<double>> backend_;
  InformationFilter<double> filter_;
  std::vector<Eigen::Index> offsets_, sizes_;
  std::vector<int> owners_;
  std::vector<InformationStatistics<double>> statistics_;  // every block (this rank's data)
  std::vector<ParameterBlock<double>> owned_;              // owned blocks, ascending id
  std::vector<std::size_t> owned_ids_;
  Eigen::VectorXd mean_;
};

}  // namespace kwm
