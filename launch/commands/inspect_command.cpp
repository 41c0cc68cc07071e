// kwm inspect: reads a checkpoint directory (or a run directory's newest complete checkpoint)
// without building a learner. Every file is opened through Hdf5File::open, so its metadata is
// walked by the probe process first (an HDF5 crash or hang there is one line and exit 2), and
// every dataset is read back against its XXH64 (Fletcher32 for version 1); block health comes
// from core/kalman/block_health on the CPU backend.
#include "launch/commands/inspect_command.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/backend/host_transfer.hpp"
#include "core/kalman/block_health.hpp"
#include "distributed/checkpoint/checkpoint.hpp"
#include "launch/json_result.hpp"
#include "launch/user_error.hpp"
#ifdef KWM_HAVE_LANGUAGE_MODELS
#include "launch/lm/lm_inspect.hpp"
#endif

namespace kwm::launch {
namespace {

namespace fs = std::filesystem;
using checkpoint::CheckpointError;
using checkpoint::Hdf5File;

struct InspectOptions {
  std::string dir;
  OutputMode output;
};

fs::path checkpoint_dir(const std::string& dir) {
  if (fs::exists(fs::path(dir) / "index.h5")) return dir;
  const auto listing = checkpoint::list_checkpoints(dir);
  if (listing.complete.empty())
    throw UserError(dir +
                    ": neither a checkpoint (no index.h5) nor a run directory with a "
                    "complete checkpoint under checkpoints/");
  return listing.complete.front();
}

// One block of a rank file: sizes and health. Throws CheckpointError on a bad dataset.
nlohmann::json inspect_block(Backend<double>& cpu, const Hdf5File& file, const std::string& id) {
  const std::string group = "/blocks/" + id;
  const Eigen::MatrixXd mean = file.read_matrix(group + "/mean");
  const Eigen::MatrixXd covariance = file.read_matrix(group + "/covariance");
  const std::string kind = file.string_attribute(group, "kind");
  const auto block_id = static_cast<BlockId>(std::stoll(id));
  ParameterBlock<double> block =
      kind == "diagonal"
          ? make_diagonal_block(cpu, block_id, to_backend(cpu, mean), to_backend(cpu, covariance))
          : make_dense_block(cpu, block_id, to_backend(cpu, mean), to_backend(cpu, covariance));
  const BlockHealth h = block_health(cpu, block);
  auto finite_or_null = [](double x) {
    return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr);
  };
  nlohmann::json counters;
  for (const char* name : {"updates", "skips", "nonfinite", "gated", "inflated"})
    counters[name] = file.int_attribute(group, std::string("counters.") + name);
  return {{"id", block_id},
          {"kind", kind},
          {"size", mean.size()},
          {"covariance_shape", {covariance.rows(), covariance.cols()}},
          {"gain", file.exists(group + "/gain")},
          {"trace", h.trace},
          {"min_eigenvalue", h.min_eigenvalue},
          {"max_eigenvalue", h.max_eigenvalue},
          {"condition", finite_or_null(h.condition)},
          {"counters", counters}};
}

int run_inspect(const InspectOptions& opt) {
  if (!fs::exists(opt.dir)) throw UserError(opt.dir + ": no such directory");
  const fs::path dir = checkpoint_dir(opt.dir);
#ifdef KWM_HAVE_LANGUAGE_MODELS
  if (is_lm_checkpoint(dir)) return inspect_lm_checkpoint(dir, opt.output);
#endif
  auto cpu = make_backend<double>("cpu");
  nlohmann::json result = {{"command", "inspect"}, {"checkpoint", dir.string()}};
  bool all_ok = true;
  try {
    const Hdf5File index = Hdf5File::open(dir / "index.h5");
    const checkpoint::IndexContents contents = checkpoint::read_index(index);
    result["format_version"] = contents.format_version;
    result["step"] = contents.meta.step;
    result["world_size"] = contents.world_size;
    result["git_revision"] = contents.git_revision;
    result["learner"] = contents.learner;
    result["config"] = contents.meta.config_yaml;
    result["kept"] = checkpoint::is_marked(dir);
    index.verify_all();
    result["checksums"]["index.h5"] = "ok";
    nlohmann::json blocks = nlohmann::json::array();
    for (std::int64_t r = 0; r < result["world_size"].get<std::int64_t>(); ++r) {
      const std::string name = fmt::format("rank-{}.h5", r);
      try {
        const Hdf5File file = Hdf5File::open(dir / name);
        file.verify_all();
        for (const std::string& id : file.members("/blocks"))
          blocks.push_back(inspect_block(*cpu, file, id));
        result["checksums"][name] = "ok";
      } catch (const CheckpointError& e) {
        result["checksums"][name] = e.what();
        all_ok = false;
      }
    }
    std::sort(blocks.begin(), blocks.end(),
              [](const auto& a, const auto& b) { return a["id"] < b["id"]; });
    result["blocks"] = blocks;
  } catch (const CheckpointError& e) {
    result["checksums"]["index.h5"] = e.what();
    all_ok = false;
  }
  result["ok"] = all_ok;

  std::string human = fmt::format(
      "checkpoint {}: step {}, written by {} rank(s), learner {}, format version {}{}\n",
      dir.string(), result.value("step", -1), result.value("world_size", -1),
      result.value("learner", std::string("?")), result.value("format_version", -1),
      result.value("kept", false) ? ", kept (KEEP marker)" : "");
  if (result.contains("blocks")) {
    for (const auto& b : result["blocks"])
      human += fmt::format(
          "  block {:>4} {:<8} n={:<6} trace={:.4g} eig=[{:.3g}, {:.3g}] "
          "updates={} skips={}\n",
          b["id"].get<std::int64_t>(), b["kind"].get<std::string>(), b["size"].get<std::int64_t>(),
          b["trace"].get<double>(), b["min_eigenvalue"].get<double>(),
          b["max_eigenvalue"].get<double>(), b["counters"]["updates"].get<std::int64_t>(),
          b["counters"]["skips"].get<std::int64_t>());
  }
  for (const auto& [file, status] : result["checksums"].items())
    human += fmt::format("  {}: {}\n", file, status.get<std::string>());
  print_result(opt.output, result, human);
  if (!all_ok) {
    std::string failures;
    for (const auto& [file, status] : result["checksums"].items())
      if (status != "ok") failures += (failures.empty() ? "" : "; ") + status.get<std::string>();
    throw UserError(failures);
  }
  return 0;
}

}  // namespace

Command register_inspect_command(CLI::App& app) {
  auto opt = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "Show a checkpoint: step, config, blocks with sizes and health, checksums");
  cmd->add_option("dir", opt->dir, "A checkpoint (step-N) or a run directory (newest checkpoint)")
      ->required();
  add_json_flag(*cmd, opt->output);
  cmd->footer("Exit status: 0 ok, 2 a missing, corrupt or unreadable checkpoint.");
  return Command{cmd, [opt] {
                   try {
                     return run_inspect(*opt);
                   } catch (const CheckpointError& e) {
                     print_error(opt->output, "inspect", e.what());
                     throw UserError(e.what());
                   }
                 }};
}

}  // namespace kwm::launch
