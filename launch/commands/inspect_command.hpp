// `kwm inspect`: what a checkpoint holds (step, config, blocks with sizes and health) and whether
// every dataset's checksum verifies.
#pragma once

#include <CLI/CLI.hpp>

#include "launch/commands/command.hpp"

namespace kwm::launch {

Command register_inspect_command(CLI::App& app);

}  // namespace kwm::launch
