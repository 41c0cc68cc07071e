// Time split boundaries and NaN-skipping channel statistics.
#include "core/eval/time_split.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace kwm::eval {

TimeSplit split_by_time(Eigen::Index steps, const SplitFractions& fractions) {
  const auto in_unit = [](double f) { return std::isfinite(f) && f >= 0 && f <= 1; };
  const double total = fractions.train + fractions.validation + fractions.test;
  if (!in_unit(fractions.train) || !in_unit(fractions.validation) || !in_unit(fractions.test) ||
      std::abs(total - 1.0) > 1e-9) {
    throw std::invalid_argument("split fractions must each be in [0, 1] and sum to 1; got train " +
                                std::to_string(fractions.train) + ", validation " +
                                std::to_string(fractions.validation) + ", test " +
                                std::to_string(fractions.test));
  }
  const double t = static_cast<double>(steps);
  const auto boundary = [&](double fraction) {
    const auto b = static_cast<Eigen::Index>(std::llround(t * fraction));
    return std::min(std::max<Eigen::Index>(b, 0), steps);
  };
  TimeSplit split;
  split.train = {0, boundary(fractions.train)};
  split.validation = {split.train.end, boundary(fractions.train + fractions.validation)};
  split.test = {split.validation.end, steps};
  if (split.train.size() < 1) {
    throw std::invalid_argument("the training part of a " + std::to_string(steps) +
                                "-step series with train fraction " +
                                std::to_string(fractions.train) + " is empty");
  }
  return split;
}

ChannelStatistics channel_statistics(const Eigen::MatrixXd& values, const TimeRange& range) {
  if (range.begin < 0 || range.end > values.rows() || range.begin > range.end) {
    throw std::invalid_argument("rows [" + std::to_string(range.begin) + ", " +
                                std::to_string(range.end) + ") lie outside a table of " +
                                std::to_string(values.rows()) + " rows");
  }
  const Eigen::Index channels = values.cols();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ChannelStatistics stats{Eigen::VectorXd::Constant(channels, nan),
                          Eigen::VectorXd::Constant(channels, nan),
                          Eigen::VectorXi::Zero(channels)};
  for (Eigen::Index c = 0; c < channels; ++c) {
    // Two passes (mean, then centred squares): no cancellation for channels far from zero.
    double sum = 0;
    int count = 0;
    for (Eigen::Index r = range.begin; r < range.end; ++r) {
      if (std::isfinite(values(r, c))) {
        sum += values(r, c);
        ++count;
      }
    }
    stats.count(c) = count;
    if (count == 0) continue;
    const double mean = sum / count;
    double squares = 0;
    for (Eigen::Index r = range.begin; r < range.end; ++r) {
      if (std::isfinite(values(r, c))) squares += (values(r, c) - mean) * (values(r, c) - mean);
    }
    stats.mean(c) = mean;
    stats.std(c) = std::sqrt(squares / count);
  }
  return stats;
}

}  // namespace kwm::eval
