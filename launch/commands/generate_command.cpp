// kwm generate --run-dir DIR --prompt TEXT --tokens N [--temperature T] [--seed S] [--json]:
// encodes the prompt with the run's tokenizer, samples N tokens from model.h5 and prints the
// prompt with its continuation.
#include "launch/commands/generate_command.hpp"

#include <memory>
#include <nlohmann/json.hpp>

#include "core/lm/generate.hpp"
#include "launch/json_result.hpp"
#include "launch/lm/lm_run_artifacts.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {
namespace {

struct GenerateOptions {
  std::string run_dir;
  std::string prompt;
  int tokens = 100;
  double temperature = 1.0;
  std::uint64_t seed = 1;
  OutputMode output;
};

int run_generate(const GenerateOptions& opt) {
  if (opt.tokens < 0) throw UserError("--tokens must be >= 0");
  if (!(opt.temperature >= 0.0)) throw UserError("--temperature must be >= 0 (0: greedy)");
  const LmRun run = load_lm_run(opt.run_dir);
  const auto prompt = run.tokenizer->encode(opt.prompt);
  const int context = run.model.parameters.config.context;
  if (prompt.empty()) throw UserError("--prompt is empty; give at least one character");
  if (static_cast<int>(prompt.size()) > context)
    throw UserError("--prompt is " + std::to_string(prompt.size()) +
                    " tokens, longer than the model's context of " + std::to_string(context) +
                    " tokens");
  const auto tokens =
      lm::generate(run.model.parameters, prompt, opt.tokens, opt.temperature, opt.seed);
  const std::string text = run.tokenizer->decode(tokens);
  const std::vector<std::int32_t> continuation(tokens.begin() + static_cast<long>(prompt.size()),
                                               tokens.end());
  print_result(opt.output,
               {{"command", "generate"},
                {"run_dir", opt.run_dir},
                {"prompt", opt.prompt},
                {"prompt_tokens", prompt.size()},
                {"new_tokens", continuation.size()},
                {"temperature", opt.temperature},
                {"seed", opt.seed},
                {"continuation", run.tokenizer->decode(continuation)},
                {"text", text}},
               text + "\n");
  return 0;
}

}  // namespace

Command register_generate_command(CLI::App& app) {
  auto opt = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "generate", "Sample a continuation of a prompt from a trained language model");
  cmd->add_option("--run-dir", opt->run_dir, "A language-model run directory written by kwm train")
      ->required();
  cmd->add_option("--prompt", opt->prompt, "Text to continue (at most the model's context)")
      ->required();
  cmd->add_option("--tokens", opt->tokens, "Tokens to generate (default 100)");
  cmd->add_option("--temperature", opt->temperature,
                  "Sampling temperature; 0 is greedy (default 1)");
  cmd->add_option("--seed", opt->seed, "Sampling seed (default 1)");
  add_json_flag(*cmd, opt->output);
  cmd->footer("Exit status: 0 ok, 2 bad input (one line on stderr naming the problem).");
  return Command{cmd, [opt] {
                   try {
                     return run_generate(*opt);
                   } catch (const std::exception& e) {
                     print_error(opt->output, "generate", e.what());
                     throw;
                   }
                 }};
}

}  // namespace kwm::launch
