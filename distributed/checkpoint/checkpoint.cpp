// Checkpoint format v2: writing (tmp dir, fsync, atomic rename), listing, pruning and re-sharded
// loading. Layout and attribute names: docs/checkpoint-format.md.
#include "distributed/checkpoint/checkpoint.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <utility>

#include "core/backend/host_transfer.hpp"
#include "core/models/model_io.hpp"

#ifndef KWM_GIT_REVISION
#define KWM_GIT_REVISION "unknown"
#endif

namespace kwm::checkpoint {
namespace fs = std::filesystem;
namespace {

std::string rank_file_name(int rank) { return "rank-" + std::to_string(rank) + ".h5"; }

Eigen::VectorXd as_vector(const std::vector<double>& v) {
  return Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()));
}

void write_rank_file(const fs::path& path, int rank, int ranks, const CheckpointMeta& meta,
                     const KalmanSequenceLearner& learner) {
  Hdf5File file = Hdf5File::create(path);
  file.set_attribute("/", "format_version", kFormatVersion);
  file.set_attribute("/", "rank", std::int64_t{rank});
  file.set_attribute("/", "world_size", std::int64_t{ranks});
  file.set_attribute("/", "step", meta.step);
  const auto& blocks = learner.blocks();
  if (blocks.empty()) file.write_bytes("/blocks/none", "");
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const ParameterBlock<double>& block = blocks[i];
    const std::string group = block_group(static_cast<std::int64_t>(block.id));
    auto& backend = const_cast<KalmanSequenceLearner&>(learner).backend();
    file.write_matrix(group + "/mean", to_host(backend, block.mean));
    const std::string moment = block.form == Form::covariance ? "/covariance" : "/information";
    file.write_matrix(group + moment, to_host(backend, block.second_moment()));
    if (meta.gains) {
      if (const auto gain = learner.last_gain(i)) file.write_matrix(group + "/gain", *gain);
    }
    file.set_attribute(group, "kind", to_string(block.kind));
    file.set_attribute(group, "form", to_string(block.form));
    write_counters(file, group, block.counters);
  }
  file.close_and_sync();
}

void write_index(const fs::path& path, int ranks, const CheckpointMeta& meta,
                 const KalmanSequenceLearner& learner) {
  Hdf5File file = Hdf5File::create(path);
  file.set_attribute("/", "format_version", kFormatVersion);
  file.set_attribute("/", "git_revision", git_revision());
  file.set_attribute("/", "world_size", std::int64_t{ranks});
  file.set_attribute("/", "step", meta.step);
  file.set_attribute("/", "gains", std::int64_t{meta.gains ? 1 : 0});
  file.set_attribute("/", "learner", learner.name());
  file.set_attribute("/", "config_yaml", meta.config_yaml);
  file.set_attribute("/", "model_config", YAML::Dump(model_config(learner.model())));
  file.set_attribute("/", "model_yaml", model_to_yaml(learner.model()));

  file.write_matrix("/model/theta", learner.model().theta());
  for (const auto& [name, array] : learner.model().recurrent_state())
    file.write_matrix("/model/recurrent/" + name, array);

  const KalmanLearnerState state = learner.shared_state();
  file.write_matrix("/learner/noise_estimate", as_vector(state.noise_estimate));
  file.set_attribute("/learner", "nis_sum", state.nis_sum);
  file.set_attribute("/learner", "nis_count", state.nis_count);
  file.set_attribute("/learner", "updates", state.updates);
  file.set_attribute("/learner", "projections", state.projections);
  write_counters(file, "/learner", state.counters);

  file.write_matrix("/cursor/position",
                    Eigen::Vector2d(double(meta.cursor.epoch), double(meta.cursor.next_time)));
  file.set_attribute("/cursor", "epoch", meta.cursor.epoch);
  file.set_attribute("/cursor", "next_time", meta.cursor.next_time);
  file.write_bytes("/metrics/jsonl", meta.metrics_jsonl);
  for (const auto& [name, sums] : meta.running_metrics)
    file.write_matrix("/metrics/running/" + name, sums);

  // Block -> the rank file holding it, and each block's size (placement is by global id).
  const auto& shapes = learner.block_shapes();
  Eigen::VectorXd owner(static_cast<Eigen::Index>(shapes.size()));
  Eigen::VectorXd size(owner.size());
  for (std::size_t b = 0; b < shapes.size(); ++b) {
    owner(static_cast<Eigen::Index>(b)) = double(learner.block_owners()[b]);
    size(static_cast<Eigen::Index>(b)) = double(shapes[b].size);
  }
  file.write_matrix("/blocks/file_rank", owner);
  file.write_matrix("/blocks/size", size);
  file.close_and_sync();
}

// Runs `work` on this rank; every rank learns whether any failed and throws together.
template <typename Work>
void agree(Communicator& world, const std::string& what, Work&& work) {
  std::optional<std::string> error;
  try {
    work();
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (world.all_reduce_any(error.has_value()))
    throw CheckpointError(error ? *error : what + ": failed on another rank");
}

std::optional<std::int64_t> step_of(const std::string& name, const std::string& suffix) {
  if (name.rfind("step-", 0) != 0 || name.size() <= 5 + suffix.size()) return std::nullopt;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return std::nullopt;
  const std::string digits = name.substr(5, name.size() - 5 - suffix.size());
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return std::nullopt;
  return std::stoll(digits);
}

void mark_file(const fs::path& dir) {
  std::ofstream(dir / kKeepMarker) << "kept: pruning never deletes this checkpoint\n";
  if (!fs::exists(dir / kKeepMarker))
    throw CheckpointError((dir / kKeepMarker).string() + ": cannot write the keep marker");
}

}  // namespace

bool is_marked(const fs::path& checkpoint_dir) { return fs::exists(checkpoint_dir / kKeepMarker); }

void mark_checkpoint(const fs::path& checkpoint_dir) {
  if (!fs::is_directory(checkpoint_dir) || !fs::exists(checkpoint_dir / "index.h5"))
    throw CheckpointError(checkpoint_dir.string() + ": not a complete checkpoint");
  mark_file(checkpoint_dir);
  sync_directory(checkpoint_dir);
}

std::string git_revision() { return KWM_GIT_REVISION; }

fs::path checkpoints_dir(const fs::path& run_dir) { return run_dir / "checkpoints"; }

fs::path write_checkpoint(Communicator& world, const fs::path& run_dir, const CheckpointMeta& meta,
                          const KalmanSequenceLearner& learner) {
  const std::string name = "step-" + std::to_string(meta.step);
  const fs::path parent = checkpoints_dir(run_dir);
  const fs::path tmp = parent / (name + ".tmp");
  const fs::path final_dir = parent / name;
  agree(world, tmp.string(), [&] {
    if (world.rank() != 0) return;
    fs::create_directories(parent);
    fs::remove_all(tmp);  // a torn attempt at this same step
    fs::create_directory(tmp);
  });
  agree(world, tmp.string(), [&] {
    write_rank_file(tmp / rank_file_name(world.rank()), world.rank(), world.size(), meta, learner);
  });
  agree(world, tmp.string(), [&] {
    if (world.rank() != 0) return;
    write_index(tmp / "index.h5", world.size(), meta, learner);
    // A complete checkpoint of the same step (a resumed run passing it again) is replaced only
    // once the new one is complete, and keeps its mark.
    if (meta.keep || is_marked(final_dir)) mark_file(tmp);
    sync_directory(tmp);
    const fs::path old = parent / (name + ".old");
    fs::remove_all(old);
    if (fs::exists(final_dir)) fs::rename(final_dir, old);
    fs::rename(tmp, final_dir);
    sync_directory(parent);
    fs::remove_all(old);
  });
  return final_dir;
}

CheckpointListing list_checkpoints(const fs::path& run_dir) {
  CheckpointListing listing;
  const fs::path parent = checkpoints_dir(run_dir);
  if (!fs::is_directory(parent)) return listing;
  std::vector<std::pair<std::int64_t, fs::path>> complete;
  for (const auto& entry : fs::directory_iterator(parent)) {
    const std::string n = entry.path().filename().string();
    if (const auto step = step_of(n, ""); step && entry.is_directory())
      complete.emplace_back(*step, entry.path());
    else if (n.rfind("step-", 0) == 0)
      listing.incomplete.push_back(entry.path());
  }
  std::sort(complete.begin(), complete.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  for (auto& [step, path] : complete) listing.complete.push_back(path);
  std::sort(listing.incomplete.begin(), listing.incomplete.end());
  return listing;
}

std::vector<fs::path> prune_checkpoints(const fs::path& run_dir, int keep) {
  std::vector<fs::path> removed;
  if (keep <= 0) return removed;
  const CheckpointListing listing = list_checkpoints(run_dir);
  for (std::size_t i = static_cast<std::size_t>(keep); i < listing.complete.size(); ++i) {
    if (is_marked(listing.complete[i])) continue;
    fs::remove_all(listing.complete[i]);
    removed.push_back(listing.complete[i]);
  }
  return removed;
}

LoadedCheckpoint load_checkpoint(Communicator& world, const fs::path& dir,
                                 KalmanSequenceLearner& learner) {
  LoadedCheckpoint loaded;
  loaded.dir = dir;
  IndexContents index;
  std::vector<std::pair<BlockId, BlockContents>> blocks;

  // Everything is read and checked before the learner is touched.
  agree(world, dir.string(), [&] {
    const Hdf5File file = Hdf5File::open(dir / "index.h5");
    index = read_index(file);
    if (index.model_config != YAML::Dump(model_config(learner.model())) ||
        index.learner != learner.name())
      throw CheckpointError(file.path().string() +
                            ": a checkpoint of a different model or learner (its model_config "
                            "and learner differ from the run config's)");
    const auto& shapes = learner.block_shapes();
    if (index.block_size.size() != shapes.size())
      throw CheckpointError(file.path().string() +
                            ": /blocks/file_rank: " + std::to_string(index.block_size.size()) +
                            " blocks; the model has " + std::to_string(shapes.size()));
    std::map<int, Hdf5File> files;
    for (const auto& block : learner.blocks()) {
      const auto b = static_cast<std::size_t>(block.id);
      if (index.block_size[b] != static_cast<std::int64_t>(shapes[b].size))
        throw CheckpointError(file.path().string() + ": /blocks/size: block " + std::to_string(b) +
                              " differs from the model's");
      const int from = index.block_file_rank[b];
      auto it = files.find(from);
      if (it == files.end())
        it = files.emplace(from, Hdf5File::open(dir / rank_file_name(from))).first;
      BlockContents data =
          read_block(it->second, static_cast<std::int64_t>(b), index.block_size[b]);
      if (data.kind != to_string(block.kind) || data.form != to_string(block.form))
        throw CheckpointError(it->second.path().string() + ": " + block_group(block.id) + ": a " +
                              data.kind + " " + data.form + " block; the learner has " +
                              to_string(block.kind) + " " + to_string(block.form));
      blocks.emplace_back(block.id, std::move(data));
    }
  });
  agree(world, dir.string(), [&] {
    try {
      learner.restore(index.theta, index.recurrent, index.state);
      for (const auto& [id, b] : blocks) learner.restore_block(id, b.mean, b.moment, b.counters);
    } catch (const std::invalid_argument& e) {
      throw CheckpointError(dir.string() + ": " + e.what());
    }
  });
  loaded.meta = std::move(index.meta);
  loaded.meta.keep = is_marked(dir);
  loaded.world_size = index.world_size;
  loaded.git_revision = index.git_revision;
  loaded.format_version = index.format_version;
  return loaded;
}

LoadedCheckpoint resume_newest(Communicator& world, const fs::path& run_dir,
                               KalmanSequenceLearner& learner, std::vector<std::string>& skipped) {
  const CheckpointListing listing = list_checkpoints(run_dir);
  for (const fs::path& torn : listing.incomplete)
    skipped.push_back(torn.string() + ": incomplete (never renamed), skipped");
  for (const fs::path& dir : listing.complete) {
    try {
      return load_checkpoint(world, dir, learner);
    } catch (const CheckpointError& e) {
      skipped.push_back(std::string(e.what()) + "; skipped");
    }
  }
  std::string message = "no loadable checkpoint under " + checkpoints_dir(run_dir).string();
  for (const std::string& line : skipped) message += "\n  " + line;
  throw CheckpointError(message);
}

}  // namespace kwm::checkpoint
