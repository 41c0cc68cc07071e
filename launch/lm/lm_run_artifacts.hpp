// What kwm eval and kwm generate load from a finished language-model run: the resolved config,
// the model (model.h5) and the tokenizer, checked against each other.
#pragma once

#include <filesystem>
#include <memory>

#include "core/text/tokenizer.hpp"
#include "launch/lm/lm_model_file.hpp"
#include "launch/lm/lm_run_config.hpp"

namespace kwm::launch {

struct LmRun {
  LmRunConfig config;
  LmModelFile model;
  std::unique_ptr<text::Tokenizer> tokenizer;
  int length = 0;  // training sequence length (train.length as resolved)
};

// True when <run-dir>/config.yaml describes a language model.
bool is_language_model_run(const std::filesystem::path& run_dir);

// Throws UserError naming the file when one is missing or corrupt, or when the tokenizer's
// fingerprint differs from the one the model was trained with.
LmRun load_lm_run(const std::filesystem::path& run_dir);

}  // namespace kwm::launch
