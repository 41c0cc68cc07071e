// The one-step-ahead loop over a stretch of a series: predict y_t from u_t, score it, then let
// the learner observe y_t. Used to score any SequenceLearner on a validation or test range.
#pragma once

#include <Eigen/Core>

#include "core/eval/forecast_metrics.hpp"
#include "core/eval/time_split.hpp"
#include "core/learners/sequence_learner.hpp"

namespace kwm::eval {

// inputs: T x n_in (n_in may be 0), outputs: T x m, NaN = missing. For t in `range`: predict,
// score against outputs.row(t) when `score` is set, observe(y_t, learn). The learner's state is
// not reset first: run the preceding range (score = false) to warm it up.
// Throws std::invalid_argument on mismatched row counts or a range outside the table.
void run_one_step(SequenceLearner& learner, const Eigen::MatrixXd& inputs,
                  const Eigen::MatrixXd& outputs, const TimeRange& range, bool learn,
                  ForecastMetricsAccumulator* score);

// Convenience: run_one_step over `range` with a fresh accumulator, returning its metrics.
ForecastMetrics evaluate_one_step(SequenceLearner& learner, const Eigen::MatrixXd& inputs,
                                  const Eigen::MatrixXd& outputs, const TimeRange& range,
                                  bool learn);

}  // namespace kwm::eval
