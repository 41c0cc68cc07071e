// `kwm train`: stream a time series through a learner (single pass, or N epochs for the epoch
// baselines) and write <run-dir>/config.yaml, metrics.jsonl, model.yaml and predictions.csv.
#pragma once

#include <CLI/CLI.hpp>

#include "launch/commands/command.hpp"

namespace kwm::launch {

Command register_train_command(CLI::App& app);

}  // namespace kwm::launch
