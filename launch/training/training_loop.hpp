// The training loop every learner shares: stream the training split (once, or for N epochs),
// then continue through validation and test scoring one-step-ahead predictions. Writes a metrics
// line per log interval and per split through `log`.
#pragma once

#include <Eigen/Core>
#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/eval/forecast_metrics.hpp"
#include "core/eval/time_split.hpp"
#include "core/learners/sequence_learner.hpp"
#include "launch/training/run_config.hpp"
#include "launch/training/series.hpp"

namespace kwm::launch {

struct TrainingOutcome {
  eval::ForecastMetrics train;  // one-step predictions made while learning (last epoch)
  eval::ForecastMetrics validation;
  eval::ForecastMetrics test;
  double wall_seconds = 0.0;
  double train_seconds = 0.0;
  int passes = 0;        // passes over the training split
  bool stopped = false;  // the step hook ended training early (signal checkpoint)
  // One-step predictive mean and variance for every step of the series (last epoch), data units.
  Eigen::MatrixXd mean, variance;
};

using MetricsLog = std::function<void(const nlohmann::json&)>;

// The prequential sums of the epoch in progress: the whole pass so far (logged as the epoch's
// train_pass line) and the open log window. A checkpoint stores them so a resumed run's
// metrics.jsonl equals an uninterrupted run's. Empty: start from zero.
struct RunningMetrics {
  std::vector<eval::ForecastMetricsAccumulator::Sums> pass, window;
};

// Checkpoint form of one accumulator: a row per channel holding count, unpredicted,
// squared_error, absolute_error, nll, covered. sums_from_matrix throws std::invalid_argument
// when the matrix is not that for `channels` channels (wrong shape, negative or fractional
// counts).
Eigen::MatrixXd sums_to_matrix(const std::vector<eval::ForecastMetricsAccumulator::Sums>& sums);
std::vector<eval::ForecastMetricsAccumulator::Sums> sums_from_matrix(const Eigen::MatrixXd& m,
                                                                     Eigen::Index channels);

// Where training stands: the next training row, in which epoch (a checkpoint's data cursor), and
// the running metrics there. next_time < 0: the start of the epoch.
struct TrainingCursor {
  int epoch = 1;
  std::int64_t next_time = -1;
  RunningMetrics running;
};
// Called after every training step with the cursor of the next step and the steps learned so far
// (over all epochs); returns true to stop the run there (no validation or test).
using StepHook = std::function<bool(const TrainingCursor& next, std::int64_t steps_done)>;

// Learner-specific health for the log (NIS, skips, R for the Kalman learners; empty otherwise).
nlohmann::json learner_health(const SequenceLearner& learner);

TrainingOutcome run_training(SequenceLearner& learner, const Series& series,
                             const eval::TimeSplit& split, const TrainConfig& config,
                             const MetricsLog& log, bool show_progress,
                             const TrainingCursor& start = {}, const StepHook& hook = {});

// One pass with learn = false over rows [0, series.steps()), scoring `scored` only; returns the
// metrics and fills mean/variance. Used by eval.
eval::ForecastMetrics score_series(SequenceLearner& learner, const Series& series,
                                   const eval::TimeRange& scored, Eigen::MatrixXd* mean,
                                   Eigen::MatrixXd* variance);

}  // namespace kwm::launch
