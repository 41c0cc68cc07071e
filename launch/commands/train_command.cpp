// kwm train: config in, a run directory out. Everything the user gave is checked (config, data,
// learner) before the run directory is touched. Under mpirun every rank trains (the Kalman
// learner's blocks sharded over ranks); only rank 0 logs, writes files and prints the result.
#include "launch/commands/train_command.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/learners/kalman/kalman_sequence_learner.hpp"
#include "core/models/model_io.hpp"
#include "distributed/replicated_batch.hpp"
#include "launch/atomic_file.hpp"
#include "launch/json_result.hpp"
#include "launch/training/learner_factory.hpp"
#include "launch/training/run_directory.hpp"
#include "launch/training/training_loop.hpp"
#include "launch/user_error.hpp"
#ifdef KWM_HAVE_CHECKPOINT
#include "distributed/checkpoint/checkpoint.hpp"
#endif
#ifdef KWM_HAVE_LANGUAGE_MODELS
#include "launch/lm/lm_run_config.hpp"
#include "launch/lm/lm_training.hpp"
#endif

namespace kwm::launch {
namespace {

// SIGTERM / SIGUSR1: checkpoint at the next step boundary, then exit 0.
volatile std::sig_atomic_t g_stop_requested = 0;
extern "C" void request_checkpoint_and_stop(int) { g_stop_requested = 1; }

struct TrainOptions {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string run_dir;
  bool quiet = false;
  bool resume = false;
  OutputMode output;
};

int run_train(const TrainOptions& opt, Communicator& world) {
  const bool writer = world.rank() == 0;
  YAML::Node document = load_config_document(opt.config_path, opt.overrides);
#ifdef KWM_HAVE_LANGUAGE_MODELS
  if (is_language_model_config(document)) {
    LmTrainOptions lm{opt.config_path, document, opt.run_dir, opt.resume, opt.quiet, opt.output};
    return run_lm_train(lm, world);
  }
#endif
  RunConfig config = parse_run_config(document, opt.config_path);
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

  // Checkpoints (Kalman learners): resume from the newest loadable one, write every N steps and
  // on SIGTERM / SIGUSR1.
  auto* kalman_learner = dynamic_cast<KalmanSequenceLearner*>(&learner);
  const TrainConfig& train = config.train;
  const bool checkpointing = train.checkpoint_every > 0 || train.checkpoint_every_seconds > 0 ||
                             !train.keep_steps.empty() || opt.resume;
  if (checkpointing && !kalman_learner)
    throw UserError(opt.config_path +
                    ": checkpoints (train.checkpoint_every, checkpoint_every_seconds, keep_steps, "
                    "--resume) need a Kalman learner; " +
                    learner.name() + " has none");
  TrainingCursor start;
  std::string metrics_so_far;  // metrics.jsonl as written: a checkpoint carries it
#ifdef KWM_HAVE_CHECKPOINT
  if (opt.resume) {
    std::vector<std::string> skipped;
    try {
      const checkpoint::LoadedCheckpoint loaded =
          checkpoint::resume_newest(world, config.run_dir, *kalman_learner, skipped);
      for (const std::string& line : skipped) spdlog::warn("checkpoint {}", line);
      start = {static_cast<int>(loaded.meta.cursor.epoch), loaded.meta.cursor.next_time, {}};
      metrics_so_far = loaded.meta.metrics_jsonl;
      const auto& running = loaded.meta.running_metrics;
      if (running.contains("pass") && running.contains("window")) {
        try {
          const Eigen::Index m = series.outputs.cols();
          start.running.pass = sums_from_matrix(running.at("pass"), m);
          start.running.window = sums_from_matrix(running.at("window"), m);
        } catch (const std::invalid_argument& e) {
          throw UserError("--resume: " + (loaded.dir / "index.h5").string() +
                          ": /metrics/running: " + e.what());
        }
      } else {
        spdlog::warn(
            "checkpoint {} (format version {}) has no running metrics: the train metrics "
            "of this epoch restart from zero",
            loaded.dir.string(), loaded.format_version);
      }
      spdlog::info("resumed from {} (step {}, written by {} ranks, git {}): epoch {}, row {}",
                   loaded.dir.string(), loaded.meta.step, loaded.world_size, loaded.git_revision,
                   start.epoch, start.next_time);
    } catch (const checkpoint::CheckpointError& e) {
      throw UserError(std::string("--resume: ") + e.what());
    }
  }
#else
  if (checkpointing) throw UserError("checkpoints need a kwm built with HDF5");
#endif

  // Rank 0 alone writes; the others train with a silent log.
  std::ofstream metrics;
  if (writer) {
    ensure_directory(config.run_dir);
    write_file_atomically((config.run_dir / "config.yaml").string(), YAML::Dump(resolved) + "\n");
    metrics.open(config.run_dir / "metrics.jsonl", std::ios::trunc);
    if (!metrics) throw UserError((config.run_dir / "metrics.jsonl").string() + ": cannot write");
    metrics << metrics_so_far;
  }
  const MetricsLog log = [&](const nlohmann::json& line) {
    if (!writer) return;
    const std::string text = line.dump() + '\n';
    metrics << text;
    if (checkpointing) metrics_so_far += text;
  };
  StepHook hook;
#ifdef KWM_HAVE_CHECKPOINT
  if (checkpointing) {
    std::signal(SIGTERM, request_checkpoint_and_stop);
    std::signal(SIGUSR1, request_checkpoint_and_stop);
    const std::string config_yaml = YAML::Dump(resolved);
    auto last_checkpoint = std::chrono::steady_clock::now();
    hook = [&, config_yaml, last_checkpoint](const TrainingCursor& next,
                                             std::int64_t steps_done) mutable {
      // Every rank must take the same decision: one all-reduce carries the signal flag (any
      // rank) and rank 0's clock (time-based checkpoints; clocks of other ranks are ignored).
      const double since_last =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - last_checkpoint).count();
      double flags[2] = {g_stop_requested != 0 ? 1.0 : 0.0,
                         writer && train.checkpoint_every_seconds > 0 &&
                                 since_last >= train.checkpoint_every_seconds
                             ? 1.0
                             : 0.0};
      world.all_reduce_sum(flags, 2);
      const bool stop = flags[0] > 0;
      const bool kept = std::find(train.keep_steps.begin(), train.keep_steps.end(), steps_done) !=
                        train.keep_steps.end();
      const bool due = (train.checkpoint_every > 0 && steps_done % train.checkpoint_every == 0) ||
                       flags[1] > 0 || kept;
      if (!stop && !due) return false;
      checkpoint::CheckpointMeta meta;
      meta.step = steps_done;
      meta.cursor = {next.epoch, next.next_time};
      meta.config_yaml = config_yaml;
      meta.metrics_jsonl = metrics_so_far;
      meta.running_metrics = {{"pass", sums_to_matrix(next.running.pass)},
                              {"window", sums_to_matrix(next.running.window)}};
      meta.gains = train.checkpoint_gains;
      meta.keep = kept;
      try {
        metrics.flush();
        const auto dir = checkpoint::write_checkpoint(world, config.run_dir, meta, *kalman_learner);
        if (writer)
          for (const auto& gone : checkpoint::prune_checkpoints(config.run_dir, train.keep_last))
            spdlog::debug("checkpoint {} pruned", gone.string());
        spdlog::info("checkpoint {} written{}", dir.string(), kept ? " (kept)" : "");
      } catch (const checkpoint::CheckpointError& e) {
        throw std::runtime_error(std::string("checkpoint: ") + e.what());
      }
      last_checkpoint = std::chrono::steady_clock::now();
      if (stop) spdlog::info("stop requested by signal: checkpoint written, exiting");
      return stop;
    };
  }
#endif
  // A resumed run's metrics.jsonl already holds its start line (a resume leaves the file as an
  // uninterrupted run writes it).
  if (metrics_so_far.empty())
    log({{"event", "start"},
         {"learner", learner.name()},
         {"jacobian_source", learner.jacobian_source()},
         {"parameters", built.parameters},
         {"ranks", world.size()},
         {"steps", series.steps()}});

  const TrainingOutcome out =
      run_training(learner, series, split, config.train, log, writer && !opt.quiet, start, hook);
  if (!writer) return 0;
  metrics.flush();
  if (out.stopped) return 0;

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
      "train",
      "Train a sequence model on a time series, or a GPT language model on text (model.type: "
      "gpt), by Kalman filtering or a baseline");
  cmd->add_option("--config", opt->config_path, "Run config (YAML: data, model, learner, train)")
      ->required();
  cmd->add_option("--set", opt->overrides,
                  "Override a config key: --set learner.noise.variance=0.1")
      ->take_all();
  cmd->add_option("--run-dir", opt->run_dir, "Run directory (default: train.run_dir)");
  cmd->add_flag("--quiet", opt->quiet, "No progress display");
  cmd->add_flag("--resume", opt->resume,
                "Continue from the newest complete checkpoint under the run directory");
  add_json_flag(*cmd, opt->output);
  cmd->footer(
      "Writes <run-dir>/config.yaml (resolved), metrics.jsonl, model.yaml and predictions.csv\n"
      "(language models: model.h5, the tokenizer and tokens/).\n"
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
