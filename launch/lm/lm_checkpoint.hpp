// Checkpoints of language-model runs, in the layout of docs/checkpoint-format.md:
// <run-dir>/checkpoints/step-N/ with one rank-R.h5 per writing rank (the learner state that rank
// owns: factor blocks, moments, ensemble members; LearnerState keys) and index.h5 (step, tokens,
// loader cursor, metrics so far, config, world size). Any number of ranks can resume it: every
// rank reads the union of the rank files and keeps what it now owns.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/lm/learners/language_learner.hpp"
#include "core/text/token_loader.hpp"
#include "distributed/communicator.hpp"

namespace kwm::launch {

inline constexpr std::int64_t kLmCheckpointVersion = 1;

struct LmCheckpointMeta {
  std::int64_t step = 0;
  std::int64_t tokens = 0;  // training tokens learned, over all ranks
  text::LoaderCursor cursor;
  std::string config_yaml;
  std::string metrics_jsonl;
  std::string tokenizer_fingerprint;
  std::string learner;
  // Running sums of the metrics (prequential loss), so a resumed run continues them.
  double train_nll_sum = 0.0;
  double wall_seconds = 0.0;
  // The metrics window open at the checkpoint and the cumulative counters metrics.jsonl reports,
  // so a resumed run writes the same lines as an uninterrupted one (index.h5 /metrics/running).
  double window_nll = 0.0;
  double window_tokens = 0.0;
  std::int64_t skipped_updates = 0;
  std::int64_t forward_passes = 0;
  std::int64_t transposed_jacobian_passes = 0;
};

// Collective. Returns the final step-N directory; every rank gets the same outcome (a failure on
// any rank throws UserError on all and leaves only a step-N.tmp, never a torn step-N).
std::filesystem::path write_lm_checkpoint(Communicator& world, const std::filesystem::path& run_dir,
                                          const LmCheckpointMeta& meta,
                                          const lm::LanguageLearner& learner, int keep_last);

// Collective. Restores `learner` from the newest checkpoint that loads; incomplete or corrupt
// ones are reported in `skipped` and passed over. Throws UserError when none loads.
LmCheckpointMeta resume_lm_checkpoint(Communicator& world, const std::filesystem::path& run_dir,
                                      lm::LanguageLearner& learner,
                                      std::vector<std::string>& skipped);

}  // namespace kwm::launch
