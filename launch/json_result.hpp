// The output contract of every kwm subcommand: with --json, stdout carries exactly one JSON
// object, as its last line, and human-readable logs go to stderr; without it, stdout gets a
// short human summary. Logs (spdlog) always go to stderr.
#pragma once

#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace kwm::launch {

struct OutputMode {
  bool json = false;
};

inline void add_json_flag(CLI::App& command, OutputMode& mode) {
  command.add_flag("--json", mode.json,
                   "Print one JSON object as the last line of stdout (logs go to stderr)");
}

// Prints the result of a successful command: the JSON line, or the human summary.
inline void print_result(const OutputMode& mode, const nlohmann::json& result,
                         const std::string& human_summary) {
  if (mode.json) {
    std::cout << result.dump() << std::endl;
  } else {
    std::cout << human_summary << std::flush;
  }
}

// Prints a failed command's JSON line ({"command": ..., "error": ...}) when --json is on; the
// one-line message on stderr is printed by main().
inline void print_error(const OutputMode& mode, const std::string& command,
                        const std::string& message) {
  if (mode.json) {
    std::cout << nlohmann::json{{"command", command}, {"error", message}}.dump() << std::endl;
  }
}

}  // namespace kwm::launch
