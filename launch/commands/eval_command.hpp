// `kwm eval`: score a trained run on any CSV series (one-step MSE, MAE, Gaussian NLL, 90%
// coverage).
#pragma once

#include <CLI/CLI.hpp>

#include "launch/commands/command.hpp"

namespace kwm::launch {

Command register_eval_command(CLI::App& app);

}  // namespace kwm::launch
