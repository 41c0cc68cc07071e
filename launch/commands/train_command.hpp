// `kwm train`: stream a time series through a learner (single pass, or N epochs for the epoch
// baselines) and write <run-dir>/config.yaml, metrics.jsonl, model.yaml and predictions.csv.
#pragma once

#include <CLI/CLI.hpp>

#include "distributed/communicator.hpp"
#include "launch/commands/command.hpp"

namespace kwm::launch {

// `world`: the ranks this process trains with (mpirun -np N); rank 0 writes the run directory,
// logs and prints the result. It must outlive the command.
Command register_train_command(CLI::App& app, Communicator& world);

}  // namespace kwm::launch
