// Writing: rank 0 makes step-N.tmp, every rank writes and fsyncs its rank file, the outcome is
// all-reduced, rank 0 writes the index, renames to step-N and prunes. Reading: index first (format
// version, learner, tokenizer), then every rank file; the learner keeps the keys it owns.
#include "launch/lm/lm_checkpoint.hpp"

#include <fmt/format.h>

#include <map>

#include "distributed/checkpoint/checkpoint.hpp"
#include "distributed/checkpoint/hdf5_file.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {
namespace fs = std::filesystem;
using checkpoint::Hdf5File;

namespace {

// (window nll sum, window tokens, skipped updates, forward passes, transposed-Jacobian passes);
// the counts are integers below 2^53, exact as doubles.
constexpr const char* kRunningMetrics = "/metrics/running";

// Counters are exact 64-bit integers (RNG draws, steps): one "key=value" line each, as bytes.
std::string encode_counters(const std::map<std::string, std::int64_t>& counters) {
  std::string text;
  for (const auto& [key, value] : counters) text += key + "=" + std::to_string(value) + "\n";
  return text;
}

void decode_counters(const std::string& text, const fs::path& path,
                     std::map<std::string, std::int64_t>& counters) {
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    const std::size_t eq = line.rfind('=');
    if (end == std::string::npos || eq == std::string::npos)
      throw UserError(path.string() + ": /counters is malformed");
    counters[line.substr(0, eq)] = std::stoll(line.substr(eq + 1));
    at = end + 1;
  }
}

void write_state(const fs::path& path, const lm::LearnerState& state) {
  auto file = Hdf5File::create(path);
  file.set_attribute("/", "format_version", kLmCheckpointVersion);
  file.set_attribute("/", "tensors", static_cast<std::int64_t>(state.tensors.size()));
  for (const auto& [key, value] : state.tensors) file.write_matrix("/state/" + key, value);
  file.write_bytes("/counters", encode_counters(state.counters));
  file.close_and_sync();
}

// Adds one rank file's tensors and counters to `state` (keys are global; a key written by two
// ranks must not differ).
void read_state(const fs::path& path, lm::LearnerState& state) {
  const auto file = Hdf5File::open(path);
  const std::int64_t count = file.int_attribute("/", "tensors");
  std::vector<std::string> names;
  if (count > 0) names = file.verify_all("/state");
  if (static_cast<std::int64_t>(names.size()) != count)
    throw UserError(path.string() + ": expected " + std::to_string(count) +
                    " state tensors, found " + std::to_string(names.size()));
  for (const std::string& name : names) {
    const std::string key = name.substr(std::string("/state/").size());
    state.tensors[key] = file.read_matrix(name);
  }
  decode_counters(file.read_bytes("/counters"), path, state.counters);
}

LmCheckpointMeta read_index(const fs::path& dir) {
  const auto file = Hdf5File::open(dir / "index.h5");
  const std::int64_t version = file.int_attribute("/", "format_version");
  if (version != kLmCheckpointVersion)
    throw UserError((dir / "index.h5").string() + ": LM checkpoint format version " +
                    std::to_string(version) + ", this kwm reads " +
                    std::to_string(kLmCheckpointVersion));
  LmCheckpointMeta meta;
  meta.step = file.int_attribute("/", "step");
  meta.tokens = file.int_attribute("/", "tokens");
  meta.cursor.epoch = file.int_attribute("/", "cursor_epoch");
  meta.cursor.position = file.int_attribute("/", "cursor_position");
  meta.cursor.draws = static_cast<std::uint64_t>(file.int_attribute("/", "cursor_draws"));
  meta.learner = file.string_attribute("/", "learner");
  meta.tokenizer_fingerprint = file.string_attribute("/", "tokenizer_fingerprint");
  meta.train_nll_sum = file.double_attribute("/", "train_nll_sum");
  meta.wall_seconds = file.double_attribute("/", "wall_seconds");
  meta.config_yaml = file.read_bytes("/config/yaml");
  meta.metrics_jsonl = file.read_bytes("/metrics/jsonl");
  if (file.exists(kRunningMetrics)) {
    const Eigen::MatrixXd running = file.read_matrix(kRunningMetrics);
    if (running.size() != 5)
      throw UserError((dir / "index.h5").string() + ": " + kRunningMetrics + " has " +
                      std::to_string(running.size()) + " values, expected 5");
    meta.window_nll = running(0);
    meta.window_tokens = running(1);
    meta.skipped_updates = static_cast<std::int64_t>(running(2));
    meta.forward_passes = static_cast<std::int64_t>(running(3));
    meta.transposed_jacobian_passes = static_cast<std::int64_t>(running(4));
  }
  return meta;
}

void write_index(const fs::path& dir, const LmCheckpointMeta& meta, int world_size) {
  auto file = Hdf5File::create(dir / "index.h5");
  file.set_attribute("/", "format_version", kLmCheckpointVersion);
  file.set_attribute("/", "kind", std::string("language-model"));
  file.set_attribute("/", "git_revision", checkpoint::git_revision());
  file.set_attribute("/", "world_size", static_cast<std::int64_t>(world_size));
  file.set_attribute("/", "step", meta.step);
  file.set_attribute("/", "tokens", meta.tokens);
  file.set_attribute("/", "cursor_epoch", meta.cursor.epoch);
  file.set_attribute("/", "cursor_position", meta.cursor.position);
  file.set_attribute("/", "cursor_draws", static_cast<std::int64_t>(meta.cursor.draws));
  file.set_attribute("/", "learner", meta.learner);
  file.set_attribute("/", "tokenizer_fingerprint", meta.tokenizer_fingerprint);
  file.set_attribute("/", "train_nll_sum", meta.train_nll_sum);
  file.set_attribute("/", "wall_seconds", meta.wall_seconds);
  file.write_bytes("/config/yaml", meta.config_yaml);
  file.write_bytes("/metrics/jsonl", meta.metrics_jsonl);
  Eigen::VectorXd running(5);
  running << meta.window_nll, meta.window_tokens, static_cast<double>(meta.skipped_updates),
      static_cast<double>(meta.forward_passes),
      static_cast<double>(meta.transposed_jacobian_passes);
  file.write_matrix(kRunningMetrics, running);
  file.close_and_sync();
}

}  // namespace

fs::path write_lm_checkpoint(Communicator& world, const fs::path& run_dir,
                             const LmCheckpointMeta& meta, const lm::LanguageLearner& learner,
                             int keep_last) {
  const fs::path root = checkpoint::checkpoints_dir(run_dir);
  const fs::path final_dir = root / fmt::format("step-{}", meta.step);
  const fs::path tmp = root / fmt::format("step-{}.tmp", meta.step);
  std::string failure;
  if (world.rank() == 0) {
    try {
      fs::remove_all(tmp);
      fs::create_directories(tmp);
    } catch (const std::exception& e) {
      failure = e.what();
    }
  }
  if (world.all_reduce_any(!failure.empty()))
    throw UserError("checkpoint " + tmp.string() + ": cannot create it: " + failure);
  try {
    write_state(tmp / fmt::format("rank-{}.h5", world.rank()), learner.state());
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (world.all_reduce_any(!failure.empty()))
    throw UserError("checkpoint " + tmp.string() + ": a rank failed to write" +
                    (failure.empty() ? std::string() : ": " + failure));
  if (world.rank() == 0) {
    try {
      write_index(tmp, meta, world.size());
      checkpoint::sync_directory(tmp);
      fs::remove_all(final_dir);
      fs::rename(tmp, final_dir);
      checkpoint::sync_directory(root);
      if (keep_last > 0) checkpoint::prune_checkpoints(run_dir, keep_last);
    } catch (const std::exception& e) {
      failure = e.what();
    }
  }
  if (world.all_reduce_any(!failure.empty()))
    throw UserError("checkpoint " + final_dir.string() + ": " +
                    (failure.empty() ? std::string("rank 0 failed") : failure));
  return final_dir;
}

LmCheckpointMeta resume_lm_checkpoint(Communicator& world, const fs::path& run_dir,
                                      lm::LanguageLearner& learner,
                                      std::vector<std::string>& skipped) {
  const auto listing = checkpoint::list_checkpoints(run_dir);
  for (const auto& dir : listing.incomplete)
    skipped.push_back(dir.string() + ": incomplete (no rename), skipped");
  for (const fs::path& dir : listing.complete) {
    std::string failure;
    LmCheckpointMeta meta;
    try {
      meta = read_index(dir);
      if (meta.learner != learner.name())
        throw UserError((dir / "index.h5").string() + ": written by learner " + meta.learner +
                        ", this run uses " + learner.name());
      const auto index = Hdf5File::open(dir / "index.h5");
      const std::int64_t writers = index.int_attribute("/", "world_size");
      lm::LearnerState state;
      for (std::int64_t r = 0; r < writers; ++r) {
        const fs::path part = dir / fmt::format("rank-{}.h5", r);
        if (!fs::exists(part)) throw UserError(part.string() + ": missing rank file");
        read_state(part, state);
      }
      learner.restore(state);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    // Every rank must settle on the same checkpoint.
    if (!world.all_reduce_any(!failure.empty())) return meta;
    skipped.push_back(dir.string() + ": " +
                      (failure.empty() ? std::string("failed on another rank") : failure));
  }
  std::string message =
      "no loadable checkpoint under " + checkpoint::checkpoints_dir(run_dir).string();
  for (const auto& line : skipped) message += "; " + line;
  throw UserError(message);
}

}  // namespace kwm::launch
