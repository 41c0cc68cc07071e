// A training run's configuration: one YAML file (data, model, learner, train sections) plus
// `--set key.path=value` overrides, checked key by key. Mistakes are UserErrors (exit code 2).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/eval/time_split.hpp"
#include "launch/training/corruption.hpp"

namespace kwm::launch {

struct DataConfig {
  std::string path;                  // CSV file; relative paths are taken from the current dir
  std::vector<std::string> columns;  // observed channels y
  std::vector<std::string> inputs;   // exogenous inputs u (optional)
  // long: one row per time step. wide: each row holds consecutive steps in `columns` (e.g. a
  // year of monthly values), flattened row by row into a single channel.
  std::string layout = "long";
  eval::SplitFractions split;
  CorruptionConfig corrupt;  // robustness experiments: outliers / noise on training targets
};

struct TrainConfig {
  int epochs = 1;                  // passes over the training split (1: the single-pass learners)
  std::int64_t log_every = 0;      // steps between metrics lines; 0: about 50 lines per pass
  bool learn_during_test = false;  // keep updating through validation and test (continual)
  std::int64_t checkpoint_every = 0;  // training steps between checkpoints; 0: none
  // Wall-clock seconds between checkpoints (rank 0's clock, broadcast so every rank agrees);
  // 0: none. Combines with checkpoint_every: whichever comes first.
  double checkpoint_every_seconds = 0.0;
  int keep_last = 3;  // newest complete checkpoints kept; 0: all
  // Steps at which a checkpoint is written and marked (a KEEP file): pruning never deletes it.
  std::vector<std::int64_t> keep_steps;
  bool checkpoint_gains = true;  // checkpoint.gains: write each block's last Kalman gain
};

// `distributed:` how a run launched on several ranks (mpirun -np N kwm train) splits its work.
// replicated: every rank runs the same forward pass on the same data; the Kalman learner's
// covariance blocks are placed on ranks (LPT), the m x m innovation statistics all-reduced and the
// owners' means all-gathered (docs/distributed.md). One rank: the single-process learner.
// data_parallel (ar and var): each rank accumulates the least-squares statistics over its share
// of the training rows and one all-reduce joins them.
struct DistributedConfig {
  std::string mode = "replicated";
};

struct RunConfig {
  YAML::Node root;  // the resolved document, written to <run-dir>/config.yaml
  DataConfig data;
  YAML::Node model;    // `model:` (n_in / n_out filled in from the data)
  YAML::Node learner;  // `learner:` (type plus that learner's keys)
  std::string learner_type;
  TrainConfig train;
  DistributedConfig distributed;
  std::filesystem::path run_dir;  // train.run_dir, or --run-dir
};

// Reads `path` as YAML and applies overrides, without checking the sections (the language-model
// runs have their own schema). Throws UserError on a missing file, malformed YAML or bad override.
YAML::Node load_config_document(const std::filesystem::path& path,
                                const std::vector<std::string>& overrides);

// Reads `path`, applies overrides ("learner.noise.variance=0.1"; the value is parsed as YAML),
// validates every section. Throws UserError naming the file or key and what was expected.
RunConfig load_run_config(const std::filesystem::path& path,
                          const std::vector<std::string>& overrides);
// The same from a YAML document already in memory (`source` names it in errors).
RunConfig parse_run_config(YAML::Node root, const std::string& source);

}  // namespace kwm::launch
