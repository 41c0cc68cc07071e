// Run-directory files.
#include "launch/training/run_directory.hpp"

#include <fmt/format.h>

#include "launch/user_error.hpp"

namespace kwm::launch {
namespace {

std::string number(double x) { return std::isfinite(x) ? fmt::format("{:.17g}", x) : "NaN"; }

const char* split_name(const eval::TimeSplit* split, Eigen::Index t) {
  if (!split) return "eval";
  if (t < split->train.end) return "train";
  if (t < split->validation.end) return "validation";
  return "test";
}

}  // namespace

std::string predictions_csv(const Series& series, const eval::TimeSplit* split,
                            const Eigen::MatrixXd& mean, const Eigen::MatrixXd& variance) {
  std::string out = "t,split";
  for (const auto& c : series.channels) out += fmt::format(",y_{0},mean_{0},var_{0}", c);
  out += '\n';
  for (Eigen::Index t = 0; t < series.steps(); ++t) {
    out += fmt::format("{},{}", t, split_name(split, t));
    for (Eigen::Index c = 0; c < series.outputs.cols(); ++c)
      out += fmt::format(",{},{},{}", number(series.outputs(t, c)), number(mean(t, c)),
                         number(variance(t, c)));
    out += '\n';
  }
  return out;
}

void ensure_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw UserError(dir.string() + ": cannot create the run directory: " + ec.message());
}

}  // namespace kwm::launch
