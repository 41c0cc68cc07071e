// <run-dir>/model.h5: a trained language model's parameter mean, with the GPT shape and the
// tokenizer's fingerprint as attributes, so `kwm eval` and `kwm generate` rebuild exactly the
// model that was trained and refuse a tokenizer that does not match it.
#pragma once

#include <filesystem>
#include <string>

#include "core/lm/gpt_parameters.hpp"

namespace kwm::launch {

inline constexpr std::int64_t kLmModelFormatVersion = 1;

struct LmModelFile {
  lm::GptParameters<double> parameters;
  std::string tokenizer_fingerprint;
  std::string learner;  // which learner trained it (informational)
};

// Written as model.h5.tmp, synced, then renamed: a crash never leaves a torn model.h5.
void save_lm_model(const std::filesystem::path& path, const LmModelFile& model);
// Throws UserError naming the file and what is wrong (missing, corrupt, wrong version or shape).
LmModelFile load_lm_model(const std::filesystem::path& path);

}  // namespace kwm::launch
