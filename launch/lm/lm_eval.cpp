// Scores every window of the chosen text (no subsampling): the numbers are exact for the file.
#include "launch/lm/lm_eval.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/text/text_file.hpp"
#include "core/text/token_shard.hpp"
#include "distributed/communicator.hpp"
#include "launch/lm/lm_evaluation.hpp"
#include "launch/lm/lm_run_artifacts.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {

int run_lm_eval(const std::filesystem::path& run_dir, const std::string& text_path,
                const OutputMode& output) {
  const LmRun run = load_lm_run(run_dir);
  std::vector<std::int32_t> tokens;
  std::int64_t bytes = 0;
  std::string source;
  if (!text_path.empty()) {
    std::string text;
    try {
      text = text::normalise_line_endings(text::read_text_file(text_path));
    } catch (const std::exception& e) {
      throw UserError(e.what());
    }
    tokens = run.tokenizer->encode(text);
    bytes = static_cast<std::int64_t>(text.size());
    source = text_path;
  } else {
    const auto shard_path = run_dir / "tokens" / "test.tokens";
    try {
      const auto shard = text::read_token_shard(shard_path);
      tokens = shard.tokens;
    } catch (const std::exception& e) {
      throw UserError(std::string(e.what()) + " (give --text FILE to score another text)");
    }
    bytes = static_cast<std::int64_t>(run.tokenizer->decode(tokens).size());
    source = shard_path.string() + " (the run's test split)";
  }
  if (tokens.size() < 2)
    throw UserError(source + ": too short to score (" + std::to_string(tokens.size()) +
                    " tokens; at least 2 needed)");
  auto single = make_single_process_communicator();
  const LmScore score =
      score_tokens(*single, run.model.parameters, tokens, run.length, 0,
                   static_cast<double>(bytes) / static_cast<double>(tokens.size()));
  print_result(output,
               {{"command", "eval"},
                {"run_dir", run_dir.string()},
                {"text", source},
                {"learner", run.model.learner},
                {"tokens", score.tokens},
                {"bytes", bytes},
                {"nll", score.nll},
                {"bits_per_byte", score.bits_per_byte},
                {"perplexity", score.perplexity}},
               fmt::format("{}: {} tokens, loss {:.4f} nats/token, {:.4f} bits/byte, perplexity "
                           "{:.3f}\n",
                           source, score.tokens, score.nll, score.bits_per_byte, score.perplexity));
  return 0;
}

}  // namespace kwm::launch
