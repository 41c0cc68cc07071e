// kwm train: config in, a run directory out. Everything the user gave is checked (config, data,
// learner) before the run directory is touched. Under mpirun every rank trains (the Kalman
// learner's blocks sharded over ranks); only rank 0 logs, writes files and prints the result.
#include "launch/commands/train_command.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/learners/kalman/kalman_sequence_learner.hpp"
#include "core/models/model_io.hpp"
#include "distributed/replicated_batch.hpp"
#include "launch/atomic_file.hpp"
#include "launch/json_result.hpp"
#include "launch/training/learner_factory.hpp"
#include "launch/training/run_directory.hpp"
#include "launch/training/training_loop.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {
namespace {

struct TrainOptions {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string run_dir;
  bool quiet = false;
  OutputMode output;
};

int run_train(const TrainOptions& opt, Communicator& world) {
  const bool writer = world.rank() == 0;
  RunConfig config = load_run_config(opt.config_path, opt.overrides);
  if (!opt.run_dir.empty()) config.run_dir = opt.run_dir;
  Series series = load_series(config.data);
  eval::TimeSplit split;
  try {
    split = eval::split_by_time(series.steps(), config.data.split);
  } catch (const std::invalid_argument& e) {
    throw UserError(opt.config_path + ": data.split: " + e.what());
  }
  const std::int64_t corrupted = corrupt_training_targets(series, split, config.data.corrupt);
  if (corrupted > 0)
    spdlog::info("robustness run: {} training targets corrupted (outliers {:.1f}%, noise {} sd)",
                 corrupted, 100.0 * config.data.corrupt.outlier_fraction,
                 config.data.corrupt.noise_std);
  LearnerSharding sharding;
  if (world.size() > 1) sharding = replicated_batch_sharding(world);
  BuiltLearner built = build_learner(config, series, split, sharding);
  SequenceLearner& learner = *built.learner;
  if (const auto* kalman = dynamic_cast<const KalmanSequenceLearner*>(&learner);
      kalman && world.size() > 1) {
    spdlog::info("distributed: mode {}, {} ranks over {} ({}), {} covariance blocks",
                 config.distributed.mode, world.size(), world.name(), learner.name(),
                 kalman->block_shapes().size());
    const std::string placement =
        describe_placement(kalman->block_shapes(), kalman->block_owners(), world.size());
    for (std::size_t at = 0; at < placement.size();) {
      const std::size_t end = std::min(placement.find('\n', at), placement.size());
      spdlog::info("placement: {}", placement.substr(at, end - at));
      at = end + 1;
    }
  }

  YAML::Node resolved = YAML::Clone(config.root);
  if (built.resolved_model) resolved["model"] = built.resolved_model;
  resolved["learner"] = built.resolved_learner;
  resolved["train"]["run_dir"] = config.run_dir.string();

  spdlog::info("run {}: learner {} ({} parameters), H from: {}", config.run_dir.string(),
               learner.name(), built.parameters, learner.jacobian_source());
  spdlog::info("data {}: {} steps x {} channels; train {} / validation {} / test {}", series.source,
               series.steps(), series.outputs.cols(), split.train.size(), split.validation.size(),
               split.test.size());

  resolved["distributed"]["mode"] = config.distributed.mode;

  // Rank 0 alone writes; the others train with a silent log.
  std::ofstream metrics;
  if (writer) {
    ensure_directory(config.run_dir);
    write_file_atomically((config.run_dir / "config.yaml").string(), YAML::Dump(resolved) + "\n");
    metrics.open(config.run_dir / "metrics.jsonl", std::ios::trunc);
    if (!metrics) throw UserError((config.run_dir / "metrics.jsonl").string() + ": cannot write");
  }
  const MetricsLog log = [&](const nlohmann::json& line) {
    if (writer) metrics << line.dump() << '\n';
  };
  log({{"event", "start"},
       {"learner", learner.name()},
       {"jacobian_source", learner.jacobian_source()},
       {"parameters", built.parameters},
       {"ranks", world.size()},
       {"steps", series.steps()}});

  const TrainingOutcome out =
      run_training(learner, series, split, config.train, log, writer && !opt.quiet);
  if (!writer) return 0;
  metrics.flush();

  if (const SequenceModel* model = model_of(learner))
    save_model(*model, config.run_dir / "model.yaml");
  write_file_atomically((config.run_dir / "predictions.csv").string(),
                        predictions_csv(series, &split, out.mean, out.variance));

  const int passes = built.single_pass ? out.passes : 0;
  nlohmann::json result = {{"command", "train"},
                           {"run_dir", config.run_dir.string()},
                           {"learner", learner.name()},
                           {"jacobian_source", learner.jacobian_source()},
                           {"parameters", built.parameters},
                           {"ranks", world.size()},
                           {"passes", passes},
                           {"batch_fit", !built.single_pass},
                           {"train_seconds", out.train_seconds},
                           {"wall_seconds", out.wall_seconds},
                           {"steps",
                            {{"train", split.train.size()},
                             {"validation", split.validation.size()},
                             {"test", split.test.size()}}},
                           {"validation", out.validation.overall},
                           {"test", out.test.overall},
                           {"health", learner_health(learner)}};
  const auto& t = out.test.overall;
  std::string human =
      fmt::format("{}: test MSE {:.6g}  MAE {:.6g}  NLL {:.4f}  90% coverage {:.3f}  ({:.2f}s)\n",
                  learner.name(), t.mse, t.mae, t.nll, t.coverage90, out.wall_seconds);
  human += fmt::format("run written to {}\n", config.run_dir.string());
  print_result(opt.output, result, human);
  return 0;
}

}  // namespace

Command register_train_command(CLI::App& app, Communicator& world) {
  auto opt = std::make_shared<TrainOptions>();
  CLI::App* cmd = app.add_subcommand(
      "train", "Train a sequence model by Kalman filtering (or a baseline) on a time series");
  cmd->add_option("--config", opt->config_path, "Run config (YAML: data, model, learner, train)")
      ->required();
  cmd->add_option("--set", opt->overrides,
                  "Override a config key: --set learner.noise.variance=0.1")
      ->take_all();
  cmd->add_option("--run-dir", opt->run_dir, "Run directory (default: train.run_dir)");
  cmd->add_flag("--quiet", opt->quiet, "No progress display");
  add_json_flag(*cmd, opt->output);
  cmd->footer(
      "Writes <run-dir>/config.yaml (resolved), metrics.jsonl, model.yaml and predictions.csv.\n"
      "Exit status: 0 ok, 2 bad input (one line on stderr naming the problem).");
  return Command{cmd, [opt, &world] {
                   try {
                     return run_train(*opt, world);
                   } catch (const std::exception& e) {
                     if (world.rank() == 0) print_error(opt->output, "train", e.what());
                     throw;
                   }
                 }};
}

}  // namespace kwm::launch
