// Warmup + constant/cosine learning rate.
#include "core/lm/learners/adamw_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/lm/learners/learner_options.hpp"

namespace kwm::lm {

double LearningRateSchedule::at(std::int64_t step) const {
  if (warmup_steps > 0 && step <= warmup_steps)
    return learning_rate * static_cast<double>(step) / static_cast<double>(warmup_steps);
  if (kind == ScheduleKind::constant) return learning_rate;
  const double span = static_cast<double>(std::max<std::int64_t>(1, total_steps - warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
  return min_learning_rate +
         0.5 * (learning_rate - min_learning_rate) * (1.0 + std::cos(std::numbers::pi * progress));
}

void LearningRateSchedule::validate(const std::string& prefix) const {
  if (!(learning_rate > 0.0) || !std::isfinite(learning_rate))
    fail_option(prefix + ".learning_rate",
                "must be a finite number > 0; got " + std::to_string(learning_rate));
  if (warmup_steps < 0)
    fail_option(prefix + ".warmup_steps", "must be >= 0; got " + std::to_string(warmup_steps));
  if (kind == ScheduleKind::cosine) {
    if (total_steps <= warmup_steps)
      fail_option(prefix + ".total_steps",
                  "must exceed warmup_steps (" + std::to_string(warmup_steps) +
                      ") for the cosine schedule; got " + std::to_string(total_steps));
    if (!(min_learning_rate >= 0.0) || min_learning_rate > learning_rate)
      fail_option(prefix + ".min_learning_rate",
                  "must be in [0, learning_rate]; got " + std::to_string(min_learning_rate));
  }
}

LearningRateSchedule parse_schedule(const YAML::Node& learner, const std::string& prefix,
                                    double default_learning_rate) {
  LearningRateSchedule s;
  s.learning_rate = read_option(learner, "learning_rate", prefix, default_learning_rate);
  const auto kind = read_option<std::string>(learner, "schedule", prefix, "constant");
  if (kind == "constant") {
    s.kind = ScheduleKind::constant;
  } else if (kind == "cosine") {
    s.kind = ScheduleKind::cosine;
  } else {
    fail_option(prefix + ".schedule", "must be one of constant, cosine; got '" + kind + "'");
  }
  s.warmup_steps = read_option<std::int64_t>(learner, "warmup_steps", prefix, 0);
  s.total_steps = read_option<std::int64_t>(learner, "total_steps", prefix, 0);
  s.min_learning_rate = read_option(learner, "min_learning_rate", prefix, 0.0);
  s.validate(prefix);
  return s;
}

}  // namespace kwm::lm
