// kwm eval for language-model runs: loss, bits per byte and perplexity of model.h5 on a text file
// (encoded with the run's tokenizer) or, by default, on the run's test split.
#pragma once

#include <filesystem>
#include <string>

#include "launch/json_result.hpp"

namespace kwm::launch {

// Prints the result (JSON or a human line) and returns the exit code; UserError on bad input
// (an empty or binary text file, a run whose tokenizer does not match its model).
int run_lm_eval(const std::filesystem::path& run_dir, const std::string& text_path,
                const OutputMode& output);

}  // namespace kwm::launch
