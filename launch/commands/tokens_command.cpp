// kwm tokens --config CONFIG --out DIR [--set key=value ...] [--loader-batches N] [--json]:
// prepares a language-model config's data exactly as kwm train does (prepare_lm_data with DIR as
// the run directory: corpus, tokenizer trained with train.seed, token shards), then writes each
// split as raw little-endian int32 (DIR/{train,validation,test}.int32), the first N training
// batches the kwm train loader draws (DIR/loader_batches.int32, so another program can check its
// sampler) and DIR/tokens.json describing them.
#include "launch/commands/tokens_command.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/lm/gpt_config.hpp"
#include "core/lm/learners/unigram_baseline.hpp"
#include "core/text/fnv1a.hpp"
#include "core/text/token_loader.hpp"
#include "launch/atomic_file.hpp"
#include "launch/json_result.hpp"
#include "launch/lm/lm_data.hpp"
#include "launch/lm/lm_run_config.hpp"
#include "launch/training/run_config.hpp"
#include "launch/training/run_directory.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {
namespace {

struct TokensOptions {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string out;
  int loader_batches = 4;
  OutputMode output;
};

// Little-endian int32, whatever the host's byte order.
std::string int32_le_bytes(const std::vector<std::int32_t>& tokens) {
  std::string bytes(tokens.size() * 4, '\0');
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const auto u = static_cast<std::uint32_t>(tokens[i]);
    for (std::size_t b = 0; b < 4; ++b)
      bytes[4 * i + b] = static_cast<char>(static_cast<unsigned char>((u >> (8 * b)) & 0xFFu));
  }
  return bytes;
}

nlohmann::json split_json(const std::string& file, const LmSplit& split) {
  const auto n = static_cast<std::int64_t>(split.tokens.size());
  return {
      {"file", file},
      {"tokens", n},
      {"file_bytes", 4 * n},
      {"text_bytes", split.bytes},
      {"bytes_per_token", n > 0 ? static_cast<double>(split.bytes) / static_cast<double>(n) : 0.0}};
}

int run_tokens(const TokensOptions& opt, Communicator& world) {
  if (opt.out.empty()) throw UserError("--out is empty; give the directory to write");
  if (opt.loader_batches < 0)
    throw UserError("--loader-batches must be >= 0; got " + std::to_string(opt.loader_batches));
  const YAML::Node document = load_config_document(opt.config_path, opt.overrides);
  if (!is_language_model_config(document))
    throw UserError(opt.config_path +
                    ": not a language-model config (model.type: gpt); kwm tokens exports the "
                    "token streams of GPT runs only");
  const std::string document_yaml = YAML::Dump(document);
  LmRunConfig config = parse_lm_run_config(document, opt.config_path);
  config.run_dir = opt.out;
  const std::filesystem::path out = opt.out;
  const std::string config_hash = text::hex64(text::fnv1a64(document_yaml));
  // prepare_lm_data reuses a tokenizer and shards already in DIR (a kwm train run directory: its
  // own tokens); an earlier export of another config there would be reused silently, so refuse.
  if (std::ifstream previous(out / "tokens.json"); previous) {
    nlohmann::json old;
    try {
      previous >> old;
    } catch (const nlohmann::json::exception&) {
    }
    if (old.value("config_fnv1a64", std::string()) != config_hash)
      throw UserError((out / "tokens.json").string() +
                      " describes tokens of another config (or is unreadable); give an empty "
                      "--out directory");
  }
  // Fail on an unusable directory before the corpus and tokenizer work.
  if (world.rank() == 0) {
    ensure_directory(out);
    const auto probe = (out / ".kwm-tokens-write-check").string();
    write_file_atomically(probe, "");
    std::filesystem::remove(probe);
  }

  const LmData data = prepare_lm_data(world, config, opt.config_path);
  const int vocab = data.tokenizer->vocab_size();
  const lm::GptConfig gpt = gpt_config_of(config, vocab, opt.config_path);
  const int length = config.train.length == 0 ? gpt.context : config.train.length;
  if (length > gpt.context)
    throw UserError(opt.config_path + ": train.length " + std::to_string(length) +
                    " exceeds model.context " + std::to_string(gpt.context));

  // The loader kwm train builds (launch/lm/lm_training.cpp), on one rank: its global batches.
  text::LoaderOptions loader_options;
  loader_options.batch = config.train.batch;
  loader_options.length = length;
  loader_options.sampling =
      config.train.sampling == "random" ? text::Sampling::random : text::Sampling::sequential;
  loader_options.seed = config.train.seed;
  std::vector<std::int32_t> drawn;
  try {
    text::TokenLoader loader(data.train.tokens, loader_options,
                             (out / "tokens/train.tokens").string());
    for (int b = 0; b < opt.loader_batches; ++b) {
      const lm::TokenBatch batch = loader.next();
      drawn.insert(drawn.end(), batch.inputs.begin(), batch.inputs.end());
    }
  } catch (const std::invalid_argument& e) {
    throw UserError(opt.config_path + ": " + e.what());
  }
  const double unigram =
      lm::unigram_nll(data.train.tokens, data.validation.tokens, data.tokenizer->vocab_size());

  const nlohmann::json description = {
      {"format", "kwm-tokens"},
      {"format_version", 1},
      {"config", opt.config_path},
      {"overrides", opt.overrides},
      {"config_fnv1a64", config_hash},
      {"dtype", "int32"},
      {"byte_order", "little"},
      {"tokenizer",
       {{"name", data.tokenizer->name()},
        {"fingerprint", data.tokenizer->fingerprint()},
        {"vocab_size", vocab}}},
      {"splits",
       {{"train", split_json("train.int32", data.train)},
        {"validation", split_json("validation.int32", data.validation)},
        {"test", split_json("test.int32", data.test)}}},
      {"unigram_validation_nll", unigram},
      {"model",
       {{"vocab_size", gpt.vocab_size},
        {"context", gpt.context},
        {"d_model", gpt.d_model},
        {"n_layers", gpt.n_layers},
        {"n_heads", gpt.n_heads},
        {"d_mlp", gpt.mlp_width()},
        {"tied_head", gpt.tied_head},
        {"head_bias", gpt.head_bias},
        {"layer_norm_eps", gpt.layer_norm_eps},
        {"init_std", gpt.init_std},
        {"parameters", lm::parameter_count(gpt)}}},
      {"train",
       {{"batch", config.train.batch},
        {"length", length},
        {"tokens", config.train.tokens},
        {"eval_every", config.train.eval_every},
        {"eval_tokens", config.train.eval_tokens},
        {"test_tokens", config.train.test_tokens},
        {"seed", config.train.seed},
        {"sampling", config.train.sampling},
        {"head_bias_init", config.train.head_bias_init}}},
      {"learner",
       {{"type", config.learner["type"] ? config.learner["type"].as<std::string>() : ""},
        {"device", config.learner_device}}},
      {"loader_batches",
       {{"file", "loader_batches.int32"},
        {"batches", opt.loader_batches},
        {"batch", config.train.batch},
        {"length", length}}}};

  if (world.rank() == 0) {
    write_file_atomically((out / "train.int32").string(), int32_le_bytes(data.train.tokens));
    write_file_atomically((out / "validation.int32").string(),
                          int32_le_bytes(data.validation.tokens));
    write_file_atomically((out / "test.int32").string(), int32_le_bytes(data.test.tokens));
    write_file_atomically((out / "loader_batches.int32").string(), int32_le_bytes(drawn));
    write_file_atomically((out / "tokens.json").string(), description.dump(2) + "\n");
    nlohmann::json result = {{"command", "tokens"},
                             {"out", opt.out},
                             {"tokenizer", data.tokenizer->name()},
                             {"vocab_size", vocab},
                             {"train", data.train.tokens.size()},
                             {"validation", data.validation.tokens.size()},
                             {"test", data.test.tokens.size()}};
    print_result(
        opt.output, result,
        fmt::format("tokens of {} ({}, vocab {}): train {} / validation {} / test {} "
                    "written to {}\n",
                    opt.config_path, data.tokenizer->name(), vocab, data.train.tokens.size(),
                    data.validation.tokens.size(), data.test.tokens.size(), opt.out));
  }
  world.barrier();
  return 0;
}

}  // namespace

Command register_tokens_command(CLI::App& app, Communicator& world) {
  auto opt = std::make_shared<TokensOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tokens",
      "Export the train/validation/test token ids of a language-model config (model.type: gpt) "
      "as kwm train prepares them");
  cmd->add_option("--config", opt->config_path, "Run config (YAML, model.type: gpt)")->required();
  cmd->add_option("--set", opt->overrides, "Override a config key: --set train.seed=2")->take_all();
  cmd->add_option("--out", opt->out, "Directory to write (created if missing)")->required();
  cmd->add_option("--loader-batches", opt->loader_batches,
                  "Training batches of the kwm train loader to record (default 4)");
  add_json_flag(*cmd, opt->output);
  cmd->footer(
      "Writes DIR/{train,validation,test}.int32 (little-endian int32 token ids),\n"
      "DIR/loader_batches.int32 (the inputs of the first batches kwm train draws, B x T each),\n"
      "DIR/tokens.json (counts, bytes per token, tokenizer, model and train settings) and, as\n"
      "kwm train would in a run directory, DIR/tokenizer.* and DIR/tokens/*.tokens.\n"
      "Exit status: 0 ok, 2 bad input (one line on stderr naming the problem).");
  return Command{cmd, [opt, &world] {
                   try {
                     return run_tokens(*opt, world);
                   } catch (const std::exception& e) {
                     if (world.rank() == 0) print_error(opt->output, "tokens", e.what());
                     throw;
                   }
                 }};
}

}  // namespace kwm::launch
