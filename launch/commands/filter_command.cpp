// kwm filter: model and data in, log-likelihood and a CSV of state estimates out.
#include "launch/commands/filter_command.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numbers>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "core/data/csv_reader.hpp"
#include "core/ssm/kalman_filter.hpp"
#include "core/ssm/smoother.hpp"
#include "launch/atomic_file.hpp"
#include "launch/json_result.hpp"
#include "launch/ssm_model_config.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {

namespace {

struct FilterOptions {
  std::string model_path;
  std::string data_path;
  std::vector<std::string> columns;
  bool smooth = false;
  std::string out_path;
  OutputMode output;
};

// The observation columns: --column, else the model's `observations`, else every column that is
// not an input; their number must match the rows of H.
std::vector<std::string> observation_columns(const FilterOptions& opt, const SsmModelConfig& cfg) {
  std::vector<std::string> cols = opt.columns;
  std::string source = "--column";
  if (cols.empty() && !cfg.observations.empty()) {
    cols = cfg.observations;
    source = fmt::format("'observations' in {}", opt.model_path);
  }
  if (cols.empty()) {
    source = "the data columns";
    for (const auto& name : data::read_csv_header(opt.data_path)) {
      if (std::find(cfg.inputs.begin(), cfg.inputs.end(), name) == cfg.inputs.end()) {
        cols.push_back(name);
      }
    }
  }
  const auto p = static_cast<std::size_t>(cfg.model.obs_dim());
  if (cols.size() != p) {
    throw UserError(fmt::format(
        "{}: H has {} row{} but {} observation column{} were selected by {} ({}); choose them "
        "with --column or 'observations'",
        opt.model_path, p, p == 1 ? "" : "s", cols.size(), cols.size() == 1 ? "" : "s", source,
        fmt::join(cols, ", ")));
  }
  return cols;
}

std::string default_output_path(const std::string& data_path) {
  return std::filesystem::path(data_path).stem().string() + ".filtered.csv";
}

std::string format_number(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  return fmt::format("{:.17g}", x);
}

// t, filtered_mean_<s>, filtered_var_<s> for every state s, then the smoothed pair with --smooth.
// A state still diffuse after filtering step t has an infinite filtered variance.
std::string estimates_csv(const SsmModelConfig& cfg, const ssm::FilterResult& f,
                          const ssm::SmootherResult* s) {
  const auto n = cfg.model.state_dim();
  std::string out = "t";
  for (const auto& name : cfg.states)
    out += fmt::format(",filtered_mean_{0},filtered_var_{0}", name);
  if (s != nullptr) {
    for (const auto& name : cfg.states)
      out += fmt::format(",smoothed_mean_{0},smoothed_var_{0}", name);
  }
  out += '\n';
  for (std::size_t t = 0; t < f.filtered_means.size(); ++t) {
    out += std::to_string(t);
    for (ssm::Index i = 0; i < n; ++i) {
      const bool diffuse = f.filtered_diffuse_covs[t](i, i) > ssm::kDiffuseTolerance;
      out += ',' + format_number(f.filtered_means[t](i));
      out += ',' + format_number(diffuse ? std::numeric_limits<double>::infinity()
                                         : f.filtered_covs[t](i, i));
    }
    if (s != nullptr) {
      for (ssm::Index i = 0; i < n; ++i) {
        out += ',' + format_number(s->means[t](i));
        out += ',' + format_number(s->covs[t](i, i));
      }
    }
    out += '\n';
  }
  return out;
}

int run_filter(const FilterOptions& opt) {
  // Every input is read and checked before the first log line, so that a user error leaves
  // exactly one line on stderr.
  const SsmModelConfig cfg = load_ssm_model_config(opt.model_path);
  const auto& model = cfg.model;

  const std::vector<std::string> columns = observation_columns(opt, cfg);
  const data::NumericTable y = data::read_csv(opt.data_path, columns);
  ssm::Matrix u;
  if (!cfg.inputs.empty()) {
    const data::NumericTable inputs = data::read_csv(opt.data_path, cfg.inputs);
    for (ssm::Index t = 0; t < inputs.values.rows(); ++t) {
      for (ssm::Index j = 0; j < inputs.values.cols(); ++j) {
        if (!std::isfinite(inputs.values(t, j))) {
          throw UserError(fmt::format("{} line {} column '{}': inputs must not be missing",
                                      opt.data_path, inputs.lines[static_cast<std::size_t>(t)],
                                      inputs.columns[static_cast<std::size_t>(j)]));
        }
      }
    }
    u = inputs.values;
  }
  if (y.values.rows() == 0) throw UserError(fmt::format("{}: no data rows", opt.data_path));
  const std::string out_path =
      opt.out_path.empty() ? default_output_path(opt.data_path) : opt.out_path;
  check_output_folder(out_path);

  spdlog::info("model {}: {} states, {} observations, {} inputs, init {}", opt.model_path,
               model.state_dim(), model.obs_dim(), model.input_dim(), cfg.init_kind);
  spdlog::info("data {}: {} time steps, columns {}", opt.data_path, y.values.rows(),
               fmt::join(columns, ", "));

  const ssm::FilterResult f = ssm::kalman_filter(model, y.values, u);
  std::unique_ptr<ssm::SmootherResult> s;
  if (opt.smooth) s = std::make_unique<ssm::SmootherResult>(ssm::smoother(model, f));

  write_file_atomically(out_path, estimates_csv(cfg, f, s.get()));

  const double loglik_kfas =
      f.loglik + 0.5 * std::log(2.0 * std::numbers::pi) * static_cast<double>(f.n_diffuse_obs);
  spdlog::info("loglik {:.6f} over {} observed values ({} missing), diffuse steps {}", f.loglik,
               f.n_obs, f.n_missing, f.diffuse_steps);
  const nlohmann::json result = {
      {"command", "filter"},
      {"model", opt.model_path},
      {"data", opt.data_path},
      {"columns", columns},
      {"n_steps", y.values.rows()},
      {"n_obs", f.n_obs},
      {"n_missing", f.n_missing},
      {"diffuse_steps", f.diffuse_steps},
      {"n_diffuse_obs", f.n_diffuse_obs},
      {"loglik", f.loglik},
      {"loglik_kfas", loglik_kfas},
      {"filtered", out_path},
      {"smoothed", opt.smooth ? nlohmann::json(out_path) : nlohmann::json(nullptr)},
  };
  std::string human = fmt::format("loglik {:.6f}  ({} observed, {} missing, {} diffuse steps)\n",
                                  f.loglik, f.n_obs, f.n_missing, f.diffuse_steps);
  human += fmt::format("{} estimates written to {}\n",
                       opt.smooth ? "filtered and smoothed" : "filtered", out_path);
  print_result(opt.output, result, human);
  return 0;
}

}  // namespace

Command register_filter_command(CLI::App& app) {
  auto opt = std::make_shared<FilterOptions>();
  CLI::App* cmd = app.add_subcommand(
      "filter",
      "Kalman filter (and RTS / exact diffuse smoother) of a linear-Gaussian state-space model");
  cmd->add_option("--model", opt->model_path, "Model file (YAML: F, H, Q, R, x0, P0 or init)")
      ->required();
  cmd->add_option("--data", opt->data_path, "Time series (CSV with a header row)")->required();
  cmd->add_option("--column", opt->columns,
                  "Observation columns, in the order of H's rows (default: the model's "
                  "'observations', else every non-input column)");
  cmd->add_flag("--smooth", opt->smooth, "Also write smoothed means and variances");
  cmd->add_option("--out", opt->out_path,
                  "Output CSV (default: <data stem>.filtered.csv in the current folder)");
  add_json_flag(*cmd, opt->output);
  cmd->footer(
      "Missing values (empty, NA, NaN) skip the update. The output is written only if everything "
      "succeeded.\nExit status: 0 ok, 2 bad input (one line on stderr naming the problem).");
  return Command{cmd, [opt] {
                   try {
                     return run_filter(*opt);
                   } catch (const data::DataError& e) {
                     print_error(opt->output, "filter", e.what());
                     throw UserError(e.what());
                   } catch (const std::exception& e) {
                     print_error(opt->output, "filter", e.what());
                     throw;
                   }
                 }};
}

}  // namespace kwm::launch
