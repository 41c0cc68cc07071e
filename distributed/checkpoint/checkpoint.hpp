// Checkpoint format v2 (docs/checkpoint-format.md): <run-dir>/checkpoints/step-N/ holding
// rank-R.h5 (the blocks rank R owned: mean, covariance or information, counters, last gain) and
// index.h5 (version, git revision, world size, step, config, theta, recurrent state, learner
// state, data cursor, metrics and running metrics, block -> file), and an optional KEEP marker.
// Written as step-N.tmp and renamed when complete; read back on any number of ranks, each rank
// reading only the blocks it now owns.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/learners/kalman/kalman_sequence_learner.hpp"
#include "distributed/checkpoint/checkpoint_index.hpp"
#include "distributed/checkpoint/hdf5_file.hpp"
#include "distributed/communicator.hpp"

namespace kwm::checkpoint {

// A file of this name in a step-N folder marks it: pruning never deletes it.
inline constexpr const char* kKeepMarker = "KEEP";

struct LoadedCheckpoint {
  std::filesystem::path dir;
  CheckpointMeta meta;
  std::int64_t world_size = 0;  // ranks that wrote it
  std::string git_revision;
  std::int64_t format_version = 0;
};

// The git revision compiled in (`git rev-parse --short HEAD` at configure time, or "unknown").
std::string git_revision();

std::filesystem::path checkpoints_dir(const std::filesystem::path& run_dir);

// Collective: every rank writes its blocks, rank 0 the index, then the rename makes step-N
// visible. Every rank gets the same outcome (a failure on any rank throws on all). Returns the
// final directory.
std::filesystem::path write_checkpoint(Communicator& world, const std::filesystem::path& run_dir,
                                       const CheckpointMeta& meta,
                                       const KalmanSequenceLearner& learner);

// Complete checkpoints (step-N, newest first) and the step-*.tmp / unparsable entries found.
struct CheckpointListing {
  std::vector<std::filesystem::path> complete;
  std::vector<std::filesystem::path> incomplete;
};
CheckpointListing list_checkpoints(const std::filesystem::path& run_dir);

// Deletes complete checkpoints beyond the newest `keep` (keep >= 1; 0 keeps all), except marked
// ones; returns what it deleted. Rank 0 only, after a successful write, so an older one goes only
// once a newer good one exists.
std::vector<std::filesystem::path> prune_checkpoints(const std::filesystem::path& run_dir,
                                                     int keep);

// Marks a complete checkpoint (writes its KEEP file); is_marked tells whether one is.
void mark_checkpoint(const std::filesystem::path& checkpoint_dir);
bool is_marked(const std::filesystem::path& checkpoint_dir);

// Collective: restores `learner` (built fresh from the same config, any rank count) from `dir`.
// Throws CheckpointError naming the file and dataset on a missing or corrupt part, a wrong
// format version or a checkpoint of a different model; the learner is then unusable.
LoadedCheckpoint load_checkpoint(Communicator& world, const std::filesystem::path& dir,
                                 KalmanSequenceLearner& learner);

// Collective: the newest checkpoint under run_dir that loads. `skipped` receives one line per
// incomplete or failing checkpoint. Throws CheckpointError (listing those lines) when none does.
LoadedCheckpoint resume_newest(Communicator& world, const std::filesystem::path& run_dir,
                               KalmanSequenceLearner& learner, std::vector<std::string>& skipped);

}  // namespace kwm::checkpoint
