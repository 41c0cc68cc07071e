// A registered subcommand: its CLI11 App and what to run once the command line has parsed.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace kwm::launch {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

}  // namespace kwm::launch
