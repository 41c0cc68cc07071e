// Learning-rate schedule of the gradient baselines (adamw, and mezo reuses it): linear warmup,
// then constant or cosine decay, as in GPT-2/nanoGPT training.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>

namespace kwm::lm {

enum class ScheduleKind { constant, cosine };

struct LearningRateSchedule {
  double learning_rate = 1e-3;  // the peak rate
  ScheduleKind kind = ScheduleKind::constant;
  std::int64_t warmup_steps = 0;   // linear ramp: step t <= warmup gets lr * t / warmup
  std::int64_t total_steps = 0;    // cosine: reaches min_learning_rate at this step, then stays
  double min_learning_rate = 0.0;  // cosine floor

  // Rate of the t-th update (t = 1, 2, ...).
  double at(std::int64_t step) const;
  // Throws std::invalid_argument naming the key (prefix.learning_rate, ...).
  void validate(const std::string& prefix) const;
};

// Reads learning_rate, schedule (constant | cosine), warmup_steps, total_steps,
// min_learning_rate from the learner node (keys are checked by the caller).
LearningRateSchedule parse_schedule(const YAML::Node& learner, const std::string& prefix,
                                    double default_learning_rate);

}  // namespace kwm::lm
