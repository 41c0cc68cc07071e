// kwm eval: rebuild a run's learner, then score one-step-ahead predictions on a series.
// Until HDF5 checkpoints carry the parameter covariances (the Checkpoints issue), the learner is
// rebuilt by replaying its training exactly as `kwm train` ran it (every learner here is
// deterministic), and the replayed parameters are checked bit for bit against model.yaml.
#include "launch/commands/eval_command.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/models/model_io.hpp"
#include "launch/atomic_file.hpp"
#include "launch/json_result.hpp"
#ifdef KWM_HAVE_LANGUAGE_MODELS
#include "launch/lm/lm_eval.hpp"
#include "launch/lm/lm_run_artifacts.hpp"
#endif
#include "launch/training/learner_factory.hpp"
#include "launch/training/run_directory.hpp"
#include "launch/training/training_loop.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {
namespace {

struct EvalOptions {
  std::string run_dir;
  std::string data_path;
  std::vector<std::string> columns;
  std::string out_path;
  std::string text_path;
  OutputMode output;
};

int run_eval(const EvalOptions& opt) {
  const std::filesystem::path dir(opt.run_dir);
#ifdef KWM_HAVE_LANGUAGE_MODELS
  if (is_language_model_run(dir)) {
    if (!opt.data_path.empty() || !opt.columns.empty() || !opt.out_path.empty())
      throw UserError(opt.run_dir +
                      " is a language-model run: use --text FILE (not --data, "
                      "--column or --out)");
    return run_lm_eval(dir, opt.text_path, opt.output);
  }
#endif
  if (!opt.text_path.empty())
    throw UserError("--text applies to language-model runs; " + opt.run_dir + " is not one");
  const auto config_path = dir / "config.yaml";
  if (!std::filesystem::exists(config_path))
    throw UserError(config_path.string() + ": no such file (is " + opt.run_dir +
                    " a kwm train run directory?)");
  const RunConfig config = load_run_config(config_path, {});
  Series training = load_series(config.data);
  eval::TimeSplit split;
  try {
    split = eval::split_by_time(training.steps(), config.data.split);
  } catch (const std::invalid_argument& e) {
    throw UserError(config_path.string() + ": data.split: " + e.what());
  }
  corrupt_training_targets(training, split, config.data.corrupt);
  BuiltLearner built = build_learner(config, training, split);
  SequenceLearner& learner = *built.learner;
  spdlog::info("replaying the training of {} ({}) to rebuild its state", opt.run_dir,
               learner.name());
  const TrainingOutcome replay = run_training(
      learner, training, split, config.train, [](const nlohmann::json&) {}, false);

  if (const SequenceModel* model = model_of(learner)) {
    const auto saved_path = dir / "model.yaml";
    if (!std::filesystem::exists(saved_path)) throw UserError(saved_path.string() + ": missing");
    const auto saved = load_model(saved_path);
    if (saved->theta() != model->theta())
      throw UserError(saved_path.string() +
                      ": the replayed training does not reproduce these parameters (did the "
                      "data or the config change since kwm train?)");
  }

  nlohmann::json result = {
      {"command", "eval"}, {"run_dir", opt.run_dir}, {"learner", learner.name()}};
  eval::ForecastMetrics metrics;
  if (opt.data_path.empty()) {
    metrics = replay.test;
    result["data"] = config.data.path;
    result["scored"] = "test split";
  } else {
    DataConfig data = config.data;
    data.path = opt.data_path;
    data.layout = "long";
    if (!opt.columns.empty()) data.columns = opt.columns;
    const Series series = load_series(data);
    if (series.outputs.cols() != training.outputs.cols() ||
        series.inputs.cols() != training.inputs.cols())
      throw UserError(
          fmt::format("{}: the run was trained on {} output and {} input columns; "
                      "got {} and {} (choose them with --column)",
                      opt.data_path, training.outputs.cols(), training.inputs.cols(),
                      series.outputs.cols(), series.inputs.cols()));
    learner.reset_state();
    Eigen::MatrixXd mean, variance;
    metrics = score_series(learner, series, {0, series.steps()}, &mean, &variance);
    if (!opt.out_path.empty())
      write_file_atomically(opt.out_path, predictions_csv(series, nullptr, mean, variance));
    result["data"] = opt.data_path;
    result["columns"] = data.columns;
    result["scored"] = "whole series";
  }
  const auto& o = metrics.overall;
  result["mse"] = o.mse;
  result["mae"] = o.mae;
  result["nll"] = o.nll;
  result["coverage90"] = o.coverage90;
  result["metrics"] = metrics;
  print_result(opt.output, result,
               fmt::format("{} on {}: MSE {:.6g}  MAE {:.6g}  NLL {:.4f}  90% coverage {:.3f}\n",
                           learner.name(), result["data"].get<std::string>(), o.mse, o.mae, o.nll,
                           o.coverage90));
  return 0;
}

}  // namespace

Command register_eval_command(CLI::App& app) {
  auto opt = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Score a trained run: one-step MSE, MAE, Gaussian NLL and 90% interval coverage (time "
      "series), or loss, bits per byte and perplexity (language models)");
  cmd->add_option("--run-dir", opt->run_dir, "A run directory written by kwm train")->required();
  cmd->add_option("--data", opt->data_path,
                  "CSV series to score (default: the run's own test split)");
  cmd->add_option("--column", opt->columns, "Observed columns (default: the run's)");
  cmd->add_option("--out", opt->out_path, "Write the one-step predictions to this CSV");
  cmd->add_option("--text", opt->text_path,
                  "Language-model runs: score this text file (default: the run's test split); "
                  "prints loss, bits per byte and perplexity");
  add_json_flag(*cmd, opt->output);
  cmd->footer("Exit status: 0 ok, 2 bad input (one line on stderr naming the problem).");
  return Command{cmd, [opt] {
                   try {
                     return run_eval(*opt);
                   } catch (const std::exception& e) {
                     print_error(opt->output, "eval", e.what());
                     throw;
                   }
                 }};
}

}  // namespace kwm::launch
