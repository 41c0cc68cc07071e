// The token streams of a language-model run: the corpus split by book, the tokenizer (byte, or a
// SentencePiece BPE trained on the training split only), and one token shard per split in the
// run directory, which is what training and evaluation read.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/text/tokenizer.hpp"
#include "distributed/communicator.hpp"
#include "launch/lm/lm_run_config.hpp"

namespace kwm::launch {

struct LmSplit {
  std::vector<std::int32_t> tokens;
  std::int64_t bytes = 0;  // UTF-8 bytes of the split's text: bits per byte = nll / ln 2 / bytes
};

struct LmData {
  std::unique_ptr<text::Tokenizer> tokenizer;
  LmSplit train;
  LmSplit validation;
  LmSplit test;
};

// Collective. Builds the corpus, reuses <run-dir>/tokenizer.* when present (resume; its
// fingerprint must match the shards), otherwise trains the tokenizer; rank 0 writes the
// tokenizer and <run-dir>/tokens/{train,validation,test}.tokens, then every rank reads the shards
// back. Throws UserError naming the config key, book or file on bad input.
LmData prepare_lm_data(Communicator& world, const LmRunConfig& config, const std::string& source);

// Tokenizer of a finished run (kwm eval / generate): <run-dir>/tokenizer.yaml and friends.
std::unique_ptr<text::Tokenizer> load_run_tokenizer(const std::filesystem::path& run_dir);

}  // namespace kwm::launch
