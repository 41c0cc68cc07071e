// run_training: epochs over the training split, then validation and test, with metrics lines.
#include "launch/training/training_loop.hpp"

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/learners/kalman/kalman_sequence_learner.hpp"
#include "launch/training/progress.hpp"

namespace kwm::launch {
namespace {

double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Predict, record, score (when an accumulator is given), observe: one step of any split.
void one_step(SequenceLearner& learner, const Series& series, Eigen::Index t, bool learn,
              eval::ForecastMetricsAccumulator* score, eval::ForecastMetricsAccumulator* window,
              Eigen::MatrixXd& mean, Eigen::MatrixXd& variance) {
  const Eigen::VectorXd u = series.inputs.row(t).transpose();
  const Eigen::VectorXd y = series.outputs.row(t).transpose();
  const Prediction p = learner.predict(u);
  mean.row(t) = p.mean.transpose();
  variance.row(t) = p.variance.transpose();
  if (score) score->add(p, y);
  if (window) window->add(p, y);
  learner.observe(y, learn);
}

eval::ForecastMetricsAccumulator resume_or_fresh(
    const std::vector<eval::ForecastMetricsAccumulator::Sums>& saved, Eigen::Index channels) {
  if (saved.empty()) return eval::ForecastMetricsAccumulator(channels);
  if (static_cast<Eigen::Index>(saved.size()) != channels)
    throw std::invalid_argument("running metrics for " + std::to_string(saved.size()) +
                                " channels; the data has " + std::to_string(channels));
  return eval::ForecastMetricsAccumulator(saved);
}

}  // namespace

Eigen::MatrixXd sums_to_matrix(const std::vector<eval::ForecastMetricsAccumulator::Sums>& sums) {
  Eigen::MatrixXd m(static_cast<Eigen::Index>(sums.size()), 6);
  for (Eigen::Index c = 0; c < m.rows(); ++c) {
    const auto& s = sums[static_cast<std::size_t>(c)];
    m.row(c) << double(s.count), double(s.unpredicted), s.squared_error, s.absolute_error, s.nll,
        double(s.covered);
  }
  return m;
}

std::vector<eval::ForecastMetricsAccumulator::Sums> sums_from_matrix(const Eigen::MatrixXd& m,
                                                                     Eigen::Index channels) {
  if (m.rows() != channels || m.cols() != 6)
    throw std::invalid_argument("running metrics of shape " + std::to_string(m.rows()) + " x " +
                                std::to_string(m.cols()) + "; expected " +
                                std::to_string(channels) + " x 6");
  const auto count = [](double v) {
    if (!(v >= 0.0 && v <= 9.0e15) || v != std::floor(v))
      throw std::invalid_argument("running metrics: a count is not a whole number >= 0");
    return static_cast<long long>(v);
  };
  std::vector<eval::ForecastMetricsAccumulator::Sums> sums(static_cast<std::size_t>(channels));
  for (Eigen::Index c = 0; c < channels; ++c) {
    auto& s = sums[static_cast<std::size_t>(c)];
    s.count = count(m(c, 0));
    s.unpredicted = count(m(c, 1));
    s.squared_error = m(c, 2);
    s.absolute_error = m(c, 3);
    s.nll = m(c, 4);
    s.covered = count(m(c, 5));
  }
  return sums;
}

nlohmann::json learner_health(const SequenceLearner& learner) {
  nlohmann::json health = nlohmann::json::object();
  if (const auto* k = dynamic_cast<const KalmanSequenceLearner*>(&learner)) {
    const auto& counters = k->filter().counters();
    const double nis = k->mean_nis();
    health["nis"] = std::isfinite(nis) ? nlohmann::json(nis) : nlohmann::json(nullptr);
    health["updates"] = counters.updates;
    health["skips"] = counters.skips;
    health["gated"] = counters.gated;
    health["inflated"] = counters.inflated;
    health["nonfinite"] = counters.nonfinite;
    health["stability_projections"] = k->stability_projections();
    if (k->noise().adaptive()) {
      // The R in use: the EMA estimate with its floor applied (normalised units).
      std::vector<double> r = k->noise().estimate();
      for (double& v : r) v = std::max(v, k->config().kalman.noise.floor);
      health["r"] = r;
    }
  }
  return health;
}

TrainingOutcome run_training(SequenceLearner& learner, const Series& series,
                             const eval::TimeSplit& split, const TrainConfig& config,
                             const MetricsLog& log, bool show_progress, const TrainingCursor& start,
                             const StepHook& hook) {
  const auto start_time = std::chrono::steady_clock::now();
  const Eigen::Index m = series.outputs.cols();
  TrainingOutcome out;
  out.mean = Eigen::MatrixXd::Constant(series.steps(), m, std::nan(""));
  out.variance = out.mean;
  const std::int64_t log_every =
      config.log_every > 0 ? config.log_every : std::max<std::int64_t>(1, split.train.size() / 50);

  // A resumed run continues inside its epoch with the restored recurrent state (no reset).
  int first_epoch = start.epoch;
  Eigen::Index resume_at = -1;
  if (start.next_time >= split.train.end) {
    ++first_epoch;
  } else if (start.next_time >= split.train.begin) {
    resume_at = start.next_time;
  }
  for (int epoch = first_epoch; epoch <= config.epochs; ++epoch) {
    const bool resumed = epoch == first_epoch && resume_at >= 0;
    if (!resumed) learner.reset_state();
    // A resumed epoch continues its prequential sums where the checkpoint left them.
    const RunningMetrics fresh;
    const RunningMetrics& from = resumed ? start.running : fresh;
    eval::ForecastMetricsAccumulator pass = resume_or_fresh(from.pass, m);
    eval::ForecastMetricsAccumulator window = resume_or_fresh(from.window, m);
    Progress progress(split.train.size(),
                      config.epochs > 1 ? "epoch " + std::to_string(epoch) : "train",
                      show_progress);
    for (Eigen::Index t = resumed ? resume_at : split.train.begin; t < split.train.end; ++t) {
      one_step(learner, series, t, true, &pass, &window, out.mean, out.variance);
      const std::int64_t done = t - split.train.begin + 1;
      if (done % log_every == 0 || t + 1 == split.train.end) {
        nlohmann::json line = {{"split", "train"},
                               {"epoch", epoch},
                               {"step", done},
                               {"elapsed_s", since(start_time)},
                               {"window", window.result().overall}};
        line["health"] = learner_health(learner);
        log(line);
        window = eval::ForecastMetricsAccumulator(m);
      }
      progress.tick(done);
      if (hook && hook(TrainingCursor{epoch, t + 1, {pass.sums(), window.sums()}},
                       std::int64_t{epoch - 1} * split.train.size() + done)) {
        progress.finish();
        out.passes = epoch - 1;
        out.stopped = true;
        out.train_seconds = out.wall_seconds = since(start_time);
        return out;
      }
    }
    progress.finish();
    out.train = pass.result();
    out.passes = epoch;
    log({{"split", "train_pass"},
         {"epoch", epoch},
         {"metrics", out.train},
         {"elapsed_s", since(start_time)}});
  }
  out.train_seconds = since(start_time);

  eval::ForecastMetricsAccumulator validation(m), test(m);
  for (Eigen::Index t = split.validation.begin; t < split.validation.end; ++t)
    one_step(learner, series, t, config.learn_during_test, &validation, nullptr, out.mean,
             out.variance);
  for (Eigen::Index t = split.test.begin; t < split.test.end; ++t)
    one_step(learner, series, t, config.learn_during_test, &test, nullptr, out.mean, out.variance);
  out.validation = validation.result();
  out.test = test.result();
  out.wall_seconds = since(start_time);
  log({{"split", "validation"}, {"metrics", out.validation}, {"elapsed_s", out.wall_seconds}});
  log({{"split", "test"}, {"metrics", out.test}, {"elapsed_s", out.wall_seconds}});
  return out;
}

eval::ForecastMetrics score_series(SequenceLearner& learner, const Series& series,
                                   const eval::TimeRange& scored, Eigen::MatrixXd* mean,
                                   Eigen::MatrixXd* variance) {
  const Eigen::Index m = series.outputs.cols();
  Eigen::MatrixXd mu = Eigen::MatrixXd::Constant(series.steps(), m, std::nan(""));
  Eigen::MatrixXd var = mu;
  eval::ForecastMetricsAccumulator acc(m);
  for (Eigen::Index t = 0; t < series.steps(); ++t) {
    const bool in_scored = t >= scored.begin && t < scored.end;
    one_step(learner, series, t, false, in_scored ? &acc : nullptr, nullptr, mu, var);
  }
  if (mean) *mean = mu;
  if (variance) *variance = var;
  return acc.result();
}

}  // namespace kwm::launch
