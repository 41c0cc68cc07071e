// kwm: the command-line program. One subcommand per file under launch/commands/; this file
// wires them into one CLI11 App and maps errors to exit codes (2: user input, 1: anything else).
#include <exception>
#include <iostream>
#include <memory>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "distributed/world.hpp"
#include "launch/commands/eval_command.hpp"
#include "launch/commands/filter_command.hpp"
#ifdef KWM_HAVE_CHECKPOINT
#include "launch/commands/inspect_command.hpp"
#endif
#ifdef KWM_HAVE_LANGUAGE_MODELS
#include "launch/commands/generate_command.hpp"
#include "launch/commands/tokens_command.hpp"
#endif
#include "launch/commands/train_command.hpp"
#include "launch/user_error.hpp"

#ifndef KWM_VERSION
#define KWM_VERSION "unknown"
#endif

namespace {

// Under mpirun a failure on one rank must end the job, not leave the others waiting in a
// collective: one line naming the rank, then MPI_Abort through the communicator.
int fail(kwm::Communicator& world, int code, const std::string& message) {
  if (world.size() > 1) {
    std::cerr << "error: rank " << world.rank() << ": " << message << std::endl;
    world.abort(code);
  }
  std::cerr << "error: " << message << std::endl;
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using kwm::launch::Command;
  // Logs go to stderr, so stdout holds only results (the --json contract).
  spdlog::set_default_logger(spdlog::stderr_color_mt("kwm"));
  spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");

  // MPI when started by mpirun/srun (every rank runs this same program), else one process.
  std::unique_ptr<kwm::Communicator> world;
  try {
    world = kwm::make_world_communicator(&argc, &argv);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
  if (world->rank() != 0) spdlog::set_level(spdlog::level::warn);  // rank 0 speaks for the job
  if (world->size() > 1)
    spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] [rank " + std::to_string(world->rank()) + "] %v");

  CLI::App app{"kwm: Kalman World Models: training and inference by Kalman filtering"};
  app.set_version_flag("--version", std::string("kwm ") + KWM_VERSION);
  app.require_subcommand(1);
  const std::vector<Command> commands = {
      kwm::launch::register_train_command(app, *world),
      kwm::launch::register_eval_command(app),
      kwm::launch::register_filter_command(app),
#ifdef KWM_HAVE_CHECKPOINT
      kwm::launch::register_inspect_command(app),
#endif
#ifdef KWM_HAVE_LANGUAGE_MODELS
      kwm::launch::register_generate_command(app),
      kwm::launch::register_tokens_command(app, *world),
#endif
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
    return fail(*world, kwm::launch::kUserErrorExitCode,
                std::string(e.what()) + " (see kwm --help)");
  }

  try {
    for (const Command& command : commands) {
      if (command.app->parsed()) return command.run();
    }
  } catch (const kwm::launch::UserError& e) {
    return fail(*world, kwm::launch::kUserErrorExitCode, e.what());
  } catch (const std::exception& e) {
    return fail(*world, 1, e.what());
  }
  return 1;
}
