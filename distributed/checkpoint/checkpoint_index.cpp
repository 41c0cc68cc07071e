// read_index / read_block: the checkpoint's files to plain values, each value range-checked so a
// corrupt or hostile file ends in a CheckpointError, never in a bad allocation or index.
#include "distributed/checkpoint/checkpoint_index.hpp"

#include <array>
#include <cmath>
#include <utility>

namespace kwm::checkpoint {
namespace {

using CounterField = std::int64_t FilterCounters::*;
constexpr std::array<std::pair<const char*, CounterField>, 9> kCounterFields{{
    {"updates", &FilterCounters::updates},
    {"skips", &FilterCounters::skips},
    {"nonfinite", &FilterCounters::nonfinite},
    {"cholesky_failures", &FilterCounters::cholesky_failures},
    {"gated", &FilterCounters::gated},
    {"inflated", &FilterCounters::inflated},
    {"jitter_retries", &FilterCounters::jitter_retries},
    {"eigen_clamps", &FilterCounters::eigen_clamps},
    {"trace_caps", &FilterCounters::trace_caps},
}};

[[noreturn]] void bad(const Hdf5File& file, const std::string& object, const std::string& what) {
  throw CheckpointError(file.path().string() + ": " + object + ": " + what);
}

// A float64 vector of whole numbers in [lo, hi] (the index stores ids and sizes as float64).
std::vector<std::int64_t> whole_numbers(const Hdf5File& file, const std::string& name, double lo,
                                        double hi) {
  const Eigen::MatrixXd m = file.read_matrix(name);
  if (m.cols() != 1) bad(file, name, "expected a column vector");
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(m.rows()));
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    const double v = m(i, 0);
    if (!(v >= lo && v <= hi) || v != std::floor(v))
      bad(file, name, "entry " + std::to_string(i) + " is not a whole number in range");
    out.push_back(static_cast<std::int64_t>(v));
  }
  return out;
}

}  // namespace

std::string block_group(std::int64_t id) { return "/blocks/" + std::to_string(id); }

void write_counters(Hdf5File& file, const std::string& object, const FilterCounters& c) {
  for (const auto& [key, field] : kCounterFields)
    file.set_attribute(object, std::string("counters.") + key, c.*field);
}

FilterCounters read_counters(const Hdf5File& file, const std::string& object) {
  FilterCounters c;
  for (const auto& [key, field] : kCounterFields)
    c.*field = file.int_attribute(object, std::string("counters.") + key);
  return c;
}

IndexContents read_index(const Hdf5File& index) {
  IndexContents c;
  c.format_version = index.int_attribute("/", "format_version");
  if (c.format_version < kOldestReadableVersion || c.format_version > kFormatVersion)
    throw CheckpointError(index.path().string() + ": format_version " +
                          std::to_string(c.format_version) + "; this kwm reads versions " +
                          std::to_string(kOldestReadableVersion) + " to " +
                          std::to_string(kFormatVersion));
  c.world_size = index.int_attribute("/", "world_size");
  if (c.world_size < 1 || c.world_size > (1 << 24))
    bad(index, "/", "world_size " + std::to_string(c.world_size) + " out of range");
  c.git_revision = index.string_attribute("/", "git_revision");
  c.learner = index.string_attribute("/", "learner");
  c.model_config = index.string_attribute("/", "model_config");
  CheckpointMeta& meta = c.meta;
  meta.step = index.int_attribute("/", "step");
  if (meta.step < 0) bad(index, "/", "negative step");
  meta.gains = index.int_attribute("/", "gains") != 0;
  meta.config_yaml = index.string_attribute("/", "config_yaml");
  meta.cursor.epoch = index.int_attribute("/cursor", "epoch");
  meta.cursor.next_time = index.int_attribute("/cursor", "next_time");
  if (meta.cursor.epoch < 1 || meta.cursor.next_time < 0)
    bad(index, "/cursor", "epoch or next_time out of range");
  const Eigen::MatrixXd position = index.read_matrix("/cursor/position");
  if (position.size() != 2 || position(0) != double(meta.cursor.epoch) ||
      position(1) != double(meta.cursor.next_time))
    bad(index, "/cursor/position", "disagrees with the cursor attributes");
  meta.metrics_jsonl = index.read_bytes("/metrics/jsonl");
  if (c.format_version >= 2 && index.exists("/metrics/running"))
    for (const std::string& name : index.members("/metrics/running"))
      meta.running_metrics.emplace(name, index.read_matrix("/metrics/running/" + name));

  const Eigen::MatrixXd theta = index.read_matrix("/model/theta");
  if (theta.cols() != 1) bad(index, "/model/theta", "expected a column vector");
  c.theta = theta;
  if (index.exists("/model/recurrent"))
    for (const std::string& name : index.members("/model/recurrent"))
      c.recurrent.emplace_back(name, index.read_matrix("/model/recurrent/" + name));

  const Eigen::MatrixXd noise = index.read_matrix("/learner/noise_estimate");
  c.state.noise_estimate.assign(noise.data(), noise.data() + noise.size());
  c.state.nis_sum = index.double_attribute("/learner", "nis_sum");
  c.state.nis_count = index.int_attribute("/learner", "nis_count");
  c.state.updates = index.int_attribute("/learner", "updates");
  c.state.projections = index.int_attribute("/learner", "projections");
  c.state.counters = read_counters(index, "/learner");

  c.block_size = whole_numbers(index, "/blocks/size", 1, double(theta.rows()));
  for (const std::int64_t rank :
       whole_numbers(index, "/blocks/file_rank", 0, double(c.world_size - 1)))
    c.block_file_rank.push_back(static_cast<int>(rank));
  if (c.block_size.size() != c.block_file_rank.size())
    bad(index, "/blocks", "size and file_rank differ in length");
  return c;
}

BlockContents read_block(const Hdf5File& file, std::int64_t id, std::int64_t size) {
  const std::string group = block_group(id);
  BlockContents b;
  b.kind = file.string_attribute(group, "kind");
  b.form = file.string_attribute(group, "form");
  if (b.form != "covariance" && b.form != "information")
    bad(file, group, "form '" + b.form + "' is neither covariance nor information");
  const Eigen::MatrixXd mean = file.read_matrix(group + "/mean");
  if (mean.rows() != size || mean.cols() != 1)
    bad(file, group + "/mean",
        "shape " + std::to_string(mean.rows()) + " x " + std::to_string(mean.cols()) +
            "; the index says " + std::to_string(size) + " x 1");
  b.mean = mean;
  const std::string moment = group + "/" + b.form;
  b.moment = file.read_matrix(moment);
  const Eigen::Index cols = b.kind == "diagonal" ? 1 : size;
  if (b.moment.rows() != size || b.moment.cols() != cols)
    bad(file, moment,
        "shape " + std::to_string(b.moment.rows()) + " x " + std::to_string(b.moment.cols()) +
            " for a " + b.kind + " block of size " + std::to_string(size));
  b.counters = read_counters(file, group);
  if (file.exists(group + "/gain")) (void)file.read_matrix(group + "/gain");
  return b;
}

}  // namespace kwm::checkpoint
