// Builds the SequenceLearner a run config names (learner.type), its model from `model:` with
// normalisation fitted on the training split only.
#pragma once

#include <memory>

#include "core/eval/time_split.hpp"
#include "core/learners/kalman/learner_sharding.hpp"
#include "core/learners/sequence_learner.hpp"
#include "core/models/sequence_model.hpp"
#include "launch/training/run_config.hpp"
#include "launch/training/series.hpp"

namespace kwm::launch {

struct BuiltLearner {
  std::unique_ptr<SequenceLearner> learner;
  YAML::Node resolved_model;    // the model config with every key (null for model-free learners)
  YAML::Node resolved_learner;  // the learner config with every key
  std::int64_t parameters = 0;
  bool single_pass = true;  // false for batch baselines (AR fit)
};

// Throws UserError naming the key for unknown learner types or bad values. `sharding` spreads a
// Kalman learner's blocks over ranks; other learners refuse a sharding of more than one rank.
BuiltLearner build_learner(const RunConfig& config, const Series& series,
                           const eval::TimeSplit& split, const LearnerSharding& sharding = {});

// A model-based learner's model, for model.yaml (null for persistence and AR).
const SequenceModel* model_of(const SequenceLearner& learner);

}  // namespace kwm::launch
