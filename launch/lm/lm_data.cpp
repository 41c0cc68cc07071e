// Corpus -> tokenizer -> shards. The shards are written once by rank 0 and read by every rank,
// so a resumed run (or one on another rank count) sees exactly the same token streams.
#include "launch/lm/lm_data.hpp"

#include <spdlog/spdlog.h>

#include "core/text/bpe_tokenizer.hpp"
#include "core/text/byte_tokenizer.hpp"
#include "core/text/corpus.hpp"
#include "core/text/token_shard.hpp"
#include "launch/training/run_directory.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {
namespace {

std::unique_ptr<text::Tokenizer> make_tokenizer(const LmRunConfig& config,
                                                const std::string& training_text,
                                                std::uint64_t seed) {
  if (config.data.tokenizer == "byte") return std::make_unique<text::ByteTokenizer>();
  text::BpeOptions options;
  options.vocab_size = config.data.bpe_vocab_size;
  options.seed = static_cast<std::uint32_t>(seed);
  return std::make_unique<text::BpeTokenizer>(text::BpeTokenizer::train(training_text, options));
}

LmSplit read_split(const std::filesystem::path& shard, const text::Tokenizer& tokenizer,
                   std::int64_t bytes) {
  text::TokenShard read = text::read_token_shard(shard);
  text::check_fingerprint(tokenizer, read.fingerprint, shard.string());
  return {std::move(read.tokens), bytes};
}

}  // namespace

std::unique_ptr<text::Tokenizer> load_run_tokenizer(const std::filesystem::path& run_dir) {
  try {
    return text::load_tokenizer(run_dir);
  } catch (const std::exception& e) {
    throw UserError(run_dir.string() + ": cannot load the run's tokenizer: " + e.what());
  }
}

LmData prepare_lm_data(Communicator& world, const LmRunConfig& config, const std::string& source) {
  text::CorpusSplits splits;
  try {
    splits = text::build_corpus(text::parse_corpus_config(config.data.corpus));
  } catch (const std::invalid_argument& e) {
    throw UserError(source + ": data.corpus: " + e.what());
  } catch (const std::runtime_error& e) {
    throw UserError(source + ": data.corpus: " + e.what() +
                    " (fetch the text with launch/fetch_data.sh --set text)");
  }
  for (const auto& book : splits.skipped)
    spdlog::warn("corpus: optional book '{}' not found, skipped", book);
  if (splits.validation.empty())
    throw UserError(source + ": data.corpus: the validation split is empty");

  LmData data;
  const std::filesystem::path& dir = config.run_dir;
  const bool have_tokenizer = std::filesystem::exists(dir / "tokenizer.yaml");
  try {
    data.tokenizer = have_tokenizer ? text::load_tokenizer(dir)
                                    : make_tokenizer(config, splits.train, config.train.seed);
  } catch (const std::exception& e) {
    throw UserError(source + ": tokenizer: " + e.what());
  }
  if (have_tokenizer && data.tokenizer->name() != config.data.tokenizer)
    throw UserError(dir.string() + ": the run's tokenizer is " + data.tokenizer->name() +
                    " but the config asks for " + config.data.tokenizer);

  const std::filesystem::path shards = dir / "tokens";
  const std::pair<const char*, const std::string*> parts[] = {
      {"train", &splits.train}, {"validation", &splits.validation}, {"test", &splits.test}};
  bool failed = false;
  std::string failure;
  if (world.rank() == 0) {
    try {
      ensure_directory(shards);
      if (!have_tokenizer) data.tokenizer->save(dir);
      for (const auto& [name, text] : parts) {
        const auto path = shards / (std::string(name) + ".tokens");
        if (std::filesystem::exists(path)) continue;  // written by an earlier attempt of this run
        text::write_token_shard(path, data.tokenizer->encode(*text), data.tokenizer->vocab_size(),
                                data.tokenizer->fingerprint());
      }
    } catch (const std::exception& e) {
      failed = true;
      failure = e.what();
    }
  }
  if (world.all_reduce_any(failed))
    throw UserError(world.rank() == 0 ? failure : "rank 0 could not write the token shards");
  try {
    const auto bytes = [](const std::string& s) { return static_cast<std::int64_t>(s.size()); };
    data.train = read_split(shards / "train.tokens", *data.tokenizer, bytes(splits.train));
    data.validation =
        read_split(shards / "validation.tokens", *data.tokenizer, bytes(splits.validation));
    data.test = read_split(shards / "test.tokens", *data.tokenizer, bytes(splits.test));
  } catch (const std::exception& e) {
    throw UserError(e.what());
  }
  return data;
}

}  // namespace kwm::launch
