// kwm inspect for language-model checkpoints (index.h5 attribute kind = "language-model"): the
// progress (step, tokens, learner, loader cursor), every rank file's tensors with their shapes and
// counters, and whether every dataset's checksum verifies. No learner is built.
#pragma once

#include <filesystem>

#include "launch/json_result.hpp"

namespace kwm::launch {

// True when DIR/index.h5 opens and says kind = "language-model".
bool is_lm_checkpoint(const std::filesystem::path& dir);

// Prints the report (JSON or human lines) and returns 0 when every file verifies; otherwise
// prints it and throws UserError naming each failing file and dataset (exit status 2).
int inspect_lm_checkpoint(const std::filesystem::path& dir, const OutputMode& output);

}  // namespace kwm::launch
