// Controlled corruption of the training targets for robustness experiments: a fraction of
// outliers and/or added Gaussian observation noise, scaled by each channel's training standard
// deviation. Validation and test stay clean, so scores measure what the learner absorbed.
#pragma once

#include <cstdint>

#include "core/eval/time_split.hpp"

namespace kwm::launch {

struct Series;

struct CorruptionConfig {
  double outlier_fraction = 0.0;  // share of training steps whose targets get an outlier
  double outlier_scale = 10.0;    // outlier size in training standard deviations (random sign)
  double noise_std = 0.0;         // added N(0, (noise_std * sd)^2) on every training target
  std::uint64_t seed = 1;
  bool active() const { return outlier_fraction > 0.0 || noise_std > 0.0; }
};

// Returns how many target values were changed. Missing values stay missing.
std::int64_t corrupt_training_targets(Series& series, const eval::TimeSplit& split,
                                      const CorruptionConfig& config);

}  // namespace kwm::launch
