// `kwm tokens`: export the token streams a language-model config trains, validates and tests on
// (the same data preparation as kwm train) as raw little-endian int32 files plus tokens.json, for
// programs outside kwm (the PyTorch baselines of bench/lm_cuda).
#pragma once

#include <CLI/CLI.hpp>

#include "distributed/communicator.hpp"
#include "launch/commands/command.hpp"

namespace kwm::launch {

Command register_tokens_command(CLI::App& app, Communicator& world);

}  // namespace kwm::launch
