// kwm: the command-line program. One subcommand per file under launch/commands/; this file
// wires them into one CLI11 App and maps errors to exit codes (2: user input, 1: anything else).
#include <exception>
#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "launch/commands/eval_command.hpp"
#include "launch/commands/filter_command.hpp"
#include "launch/commands/train_command.hpp"
#include "launch/user_error.hpp"

#ifndef KWM_VERSION
#define KWM_VERSION "unknown"
#endif

int main(int argc, char** argv) {
  using kwm::launch::Command;
  // Logs go to stderr, so stdout holds only results (the --json contract).
  spdlog::set_default_logger(spdlog::stderr_color_mt("kwm"));
  spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");

  CLI::App app{"kwm: Kalman World Models: training and inference by Kalman filtering"};
  app.set_version_flag("--version", std::string("kwm ") + KWM_VERSION);
  app.require_subcommand(1);
  const std::vector<Command> commands = {
      kwm::launch::register_train_command(app),
      kwm::launch::register_eval_command(app),
      kwm::launch::register_filter_command(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << " (see kwm --help)" << std::endl;
    return kwm::launch::kUserErrorExitCode;
  }

  try {
    for (const Command& command : commands) {
      if (command.app->parsed()) return command.run();
    }
  } catch (const kwm::launch::UserError& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return kwm::launch::kUserErrorExitCode;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
  return 1;
}
