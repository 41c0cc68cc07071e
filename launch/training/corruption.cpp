// Outliers and noise on the training split, reproducible from the seed.
#include "launch/training/corruption.hpp"

#include <cmath>
#include <random>

#include "launch/training/series.hpp"

namespace kwm::launch {

std::int64_t corrupt_training_targets(Series& series, const eval::TimeSplit& split,
                                      const CorruptionConfig& config) {
  if (!config.active()) return 0;
  const eval::ChannelStatistics stats = eval::channel_statistics(series.outputs, split.train);
  std::mt19937_64 rng(config.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::int64_t changed = 0;
  for (Eigen::Index t = split.train.begin; t < split.train.end; ++t) {
    const bool outlier = uniform(rng) < config.outlier_fraction;
    const double sign = uniform(rng) < 0.5 ? -1.0 : 1.0;
    for (Eigen::Index c = 0; c < series.outputs.cols(); ++c) {
      const double noise =
          normal(rng);  // drawn for every entry: the stream does not depend on NaNs
      double& y = series.outputs(t, c);
      if (!std::isfinite(y) || !std::isfinite(stats.std(c))) continue;
      const double sd = stats.std(c) > 0 ? stats.std(c) : 1.0;
      const double before = y;
      y += config.noise_std * sd * noise;
      if (outlier) y += sign * config.outlier_scale * sd;
      if (y != before) ++changed;
    }
  }
  return changed;
}

}  // namespace kwm::launch
