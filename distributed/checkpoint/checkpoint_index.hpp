// What a checkpoint's files hold, read into plain values with every size and range checked and
// no learner involved: load_checkpoint matches these against the learner, and the fuzz targets
// (tests/fuzz/) drive them directly on arbitrary bytes. Layout: docs/checkpoint-format.md.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/learners/kalman/kalman_sequence_learner.hpp"
#include "distributed/checkpoint/hdf5_file.hpp"

namespace kwm::checkpoint {

// Version 2: contiguous datasets with an XXH64 attribute, running metrics in the index.
// Version 1 (Fletcher32 chunks, no running metrics) is still read.
inline constexpr std::int64_t kFormatVersion = 2;
inline constexpr std::int64_t kOldestReadableVersion = 1;

// Where the training loop stands: the next training row to learn from, in which epoch.
struct DataCursor {
  std::int64_t epoch = 1;
  std::int64_t next_time = 0;
};

// What the index holds besides the learner.
struct CheckpointMeta {
  std::int64_t step = 0;  // training steps learned so far, over all epochs
  DataCursor cursor;
  std::string config_yaml;    // the resolved run config
  std::string metrics_jsonl;  // metrics.jsonl as written so far
  // The caller's running metrics accumulators (e.g. prequential sums of the current pass), by
  // name, as float64 matrices: /metrics/running/<name>. Empty in a version-1 checkpoint.
  std::map<std::string, Eigen::MatrixXd> running_metrics;
  bool gains = true;  // write each block's last Kalman gain
  bool keep = false;  // mark the checkpoint: pruning never deletes it (a KEEP file in its folder)
};

struct IndexContents {
  std::int64_t format_version = 0;
  std::int64_t world_size = 0;  // ranks that wrote it (>= 1)
  std::string git_revision;
  std::string learner;
  std::string model_config;  // YAML of the model's shape, compared with the run's
  CheckpointMeta meta;
  Eigen::VectorXd theta;
  RecurrentState recurrent;
  KalmanLearnerState state;
  // Per global block id: its size (>= 1) and the rank file holding it (in [0, world_size)).
  std::vector<std::int64_t> block_size;
  std::vector<int> block_file_rank;
};

// Throws CheckpointError naming the file and dataset or attribute on anything missing, corrupt,
// out of range, or of a format version this kwm does not read.
IndexContents read_index(const Hdf5File& index);

struct BlockContents {
  std::string kind;  // dense, diagonal
  std::string form;  // covariance, information
  Eigen::VectorXd mean;
  Eigen::MatrixXd moment;  // n x n, or n x 1 for a diagonal block
  FilterCounters counters;
};

// Block `id` of a rank file; `size` is the index's size for it. Checks the shapes.
BlockContents read_block(const Hdf5File& file, std::int64_t id, std::int64_t size);

std::string block_group(std::int64_t id);
// The `counters.*` attributes of a block group or of /learner.
void write_counters(Hdf5File& file, const std::string& object, const FilterCounters& counters);
FilterCounters read_counters(const Hdf5File& file, const std::string& object);

}  // namespace kwm::checkpoint
