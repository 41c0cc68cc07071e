// kwm generate: sample text from a trained language model.
#pragma once

#include <CLI/CLI.hpp>

#include "launch/commands/command.hpp"

namespace kwm::launch {

Command register_generate_command(CLI::App& app);

}  // namespace kwm::launch
