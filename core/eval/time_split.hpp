// Train / validation / test split of one time series by time (contiguous, in order), and the
// per-channel normalisation statistics computed on the training part only.
#pragma once

#include <Eigen/Core>

namespace kwm::eval {

// Rows [begin, end) of a T x channels table.
struct TimeRange {
  Eigen::Index begin = 0;
  Eigen::Index end = 0;
  Eigen::Index size() const { return end - begin; }
};

struct SplitFractions {
  double train = 0.7;
  double validation = 0.1;
  double test = 0.2;
};

struct TimeSplit {
  TimeRange train, validation, test;  // train.begin = 0, each part starts where the last ends
};

// Boundaries round(T * train) and round(T * (train + validation)); test is the rest. Fractions
// must be in [0, 1] and sum to 1 (within 1e-9); train must get at least one step. Throws
// std::invalid_argument with the offending values otherwise.
TimeSplit split_by_time(Eigen::Index steps, const SplitFractions& fractions = {});

// Per-channel statistics of rows `range` of `values` (rows = time), NaN entries skipped.
struct ChannelStatistics {
  Eigen::VectorXd mean;   // NaN for a channel with no finite value
  Eigen::VectorXd std;    // population standard deviation (divide by count); NaN when count = 0
  Eigen::VectorXi count;  // finite values per channel
};

// Throws std::invalid_argument when the range lies outside the table.
ChannelStatistics channel_statistics(const Eigen::MatrixXd& values, const TimeRange& range);

// channel_statistics on the training part: the only statistics a model may be normalised with.
inline ChannelStatistics training_statistics(const Eigen::MatrixXd& values,
                                             const TimeSplit& split) {
  return channel_statistics(values, split.train);
}

}  // namespace kwm::eval
