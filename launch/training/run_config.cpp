// Run-config parsing: sections, overrides, and key checks with messages naming the key.
#include "launch/training/run_config.hpp"

#include <cmath>
#include <set>

#include "launch/config_keys.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {
namespace {

// Sets root[a][b][c] = value for "a.b.c=value".
void apply_override(YAML::Node root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UserError("--set expects key.path=value; got '" + assignment + "'");
  const std::string path = assignment.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw UserError("--set " + path + ": cannot parse the value: " + e.what());
  }
  std::vector<std::string> keys;
  for (std::size_t start = 0;;) {
    const auto dot = path.find('.', start);
    keys.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  // yaml-cpp nodes are handles: walk down with fresh handles, creating maps on the way.
  std::vector<YAML::Node> chain{root};
  for (std::size_t i = 0; i + 1 < keys.size(); ++i) {
    YAML::Node next = chain.back()[keys[i]];
    if (next && !next.IsMap())
      throw UserError("--set " + path + ": '" + keys[i] + "' is not a mapping");
    chain.push_back(next);
  }
  chain.back()[keys.back()] = value;
}

RunConfig parse_sections(YAML::Node root, const std::string& source);

}  // namespace

// Every check above names the key; yaml-cpp's own exceptions from shapes no check foresaw (found
// by tests/fuzz/run_config_fuzzer) become the same kind of error rather than an uncaught throw.
RunConfig parse_run_config(YAML::Node root, const std::string& source) {
  try {
    return parse_sections(root, source);
  } catch (const YAML::Exception& e) {
    throw UserError(source + ": unexpected YAML structure: " + e.what());
  }
}

namespace {

RunConfig parse_sections(YAML::Node root, const std::string& source) {
  if (!root || !root.IsMap())
    fail_config(source, "expected a mapping with data, model, learner, train");
  check_config_keys(root, source, "",
                    {"data", "model", "learner", "train", "distributed", "checkpoint"});
  for (const char* section : {"data", "model", "learner"})
    if (!root[section]) fail_config(source, std::string("missing section '") + section + "'");

  RunConfig c;
  c.root = root;
  const YAML::Node data = root["data"];
  check_config_keys(data, source, "data",
                    {"path", "columns", "inputs", "layout", "split", "corrupt"});
  c.data.path = read_config<std::string>(data, "path", source, "data", "");
  if (c.data.path.empty()) fail_config(source, "key 'data.path' must name a CSV file");
  c.data.columns = read_config<std::vector<std::string>>(data, "columns", source, "data", {});
  if (c.data.columns.empty())
    fail_config(source, "key 'data.columns' must list at least one column");
  c.data.inputs = read_config<std::vector<std::string>>(data, "inputs", source, "data", {});
  c.data.layout = read_config<std::string>(data, "layout", source, "data", "long");
  if (c.data.layout != "long" && c.data.layout != "wide")
    fail_config(source, "key 'data.layout' must be 'long' or 'wide'; got '" + c.data.layout + "'");
  if (c.data.layout == "wide" && !c.data.inputs.empty())
    fail_config(source, "key 'data.inputs' is not supported with data.layout: wide");
  const YAML::Node split = data["split"];
  check_config_keys(split, source, "data.split", {"train", "validation", "test"});
  c.data.split.train = read_config(split, "train", source, "data.split", c.data.split.train);
  c.data.split.validation =
      read_config(split, "validation", source, "data.split", c.data.split.validation);
  c.data.split.test = read_config(split, "test", source, "data.split", c.data.split.test);

  const YAML::Node corrupt = data["corrupt"];
  check_config_keys(corrupt, source, "data.corrupt",
                    {"outlier_fraction", "outlier_scale", "noise_std", "seed"});
  auto& co = c.data.corrupt;
  co.outlier_fraction =
      read_config(corrupt, "outlier_fraction", source, "data.corrupt", co.outlier_fraction);
  co.outlier_scale =
      read_config(corrupt, "outlier_scale", source, "data.corrupt", co.outlier_scale);
  co.noise_std = read_config(corrupt, "noise_std", source, "data.corrupt", co.noise_std);
  co.seed = read_config(corrupt, "seed", source, "data.corrupt", co.seed);
  if (!(co.outlier_fraction >= 0.0 && co.outlier_fraction <= 1.0))
    fail_config(source, "key 'data.corrupt.outlier_fraction' must be in [0, 1]");
  if (!(co.noise_std >= 0.0)) fail_config(source, "key 'data.corrupt.noise_std' must be >= 0");

  c.model = root["model"];
  c.learner = root["learner"];
  if (!c.learner.IsMap() || !c.learner["type"])
    fail_config(source,
                "key 'learner.type' is required (sensitivity-dekf, dense-ekf, diagonal-ekf, "
                "adam-sensitivity, ar, var, persistence)");
  c.learner_type = read_config<std::string>(c.learner, "type", source, "learner", "");

  const YAML::Node train = root["train"];
  check_config_keys(train, source, "train",
                    {"epochs", "log_every", "learn_during_test", "run_dir", "checkpoint_every",
                     "checkpoint_every_seconds", "keep_last", "keep_steps"});
  c.train.epochs = read_config(train, "epochs", source, "train", c.train.epochs);
  if (c.train.epochs < 1) fail_config(source, "key 'train.epochs' must be >= 1");
  c.train.log_every = read_config(train, "log_every", source, "train", c.train.log_every);
  if (c.train.log_every < 0) fail_config(source, "key 'train.log_every' must be >= 0");
  c.train.learn_during_test =
      read_config(train, "learn_during_test", source, "train", c.train.learn_during_test);
  c.run_dir = read_config<std::string>(train, "run_dir", source, "train", "runs/default");
  c.train.checkpoint_every =
      read_config(train, "checkpoint_every", source, "train", c.train.checkpoint_every);
  if (c.train.checkpoint_every < 0)
    fail_config(source, "key 'train.checkpoint_every' must be >= 0");
  c.train.keep_last = read_config(train, "keep_last", source, "train", c.train.keep_last);
  if (c.train.keep_last < 0)
    fail_config(source, "key 'train.keep_last' must be >= 0 (0 keeps all)");
  c.train.checkpoint_every_seconds = read_config(train, "checkpoint_every_seconds", source, "train",
                                                 c.train.checkpoint_every_seconds);
  if (!(c.train.checkpoint_every_seconds >= 0.0) ||
      !std::isfinite(c.train.checkpoint_every_seconds))
    fail_config(source,
                "key 'train.checkpoint_every_seconds' must be a finite number >= 0 (0: none)");
  c.train.keep_steps = read_config(train, "keep_steps", source, "train", c.train.keep_steps);
  for (const std::int64_t step : c.train.keep_steps)
    if (step < 1) fail_config(source, "key 'train.keep_steps' must list training steps >= 1");
  const YAML::Node checkpoint = root["checkpoint"];
  check_config_keys(checkpoint, source, "checkpoint", {"gains"});
  c.train.checkpoint_gains = read_config(checkpoint, "gains", source, "checkpoint", true);

  const YAML::Node distributed = root["distributed"];
  check_config_keys(distributed, source, "distributed", {"mode"});
  c.distributed.mode = read_config(distributed, "mode", source, "distributed", c.distributed.mode);
  if (c.distributed.mode != "replicated" && c.distributed.mode != "data_parallel")
    fail_config(
        source,
        "key 'distributed.mode' must be 'replicated' (the sequence learners' sharded DEKF) or "
        "'data_parallel' (learner.type ar and var); got '" +
            c.distributed.mode + "'");
  if (c.distributed.mode == "data_parallel" && c.learner_type != "ar" && c.learner_type != "var")
    fail_config(source,
                "distributed.mode 'data_parallel' is offered for learner.type ar and var (their "
                "least-squares statistics add over row shards exactly); learner.type '" +
                    c.learner_type +
                    "' learns along one series in time order: use distributed.mode 'replicated' "
                    "(docs/distributed.md)");
  return c;
}

}  // namespace

YAML::Node load_config_document(const std::filesystem::path& path,
                                const std::vector<std::string>& overrides) {
  if (!std::filesystem::exists(path)) throw UserError(path.string() + ": no such file");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::Exception& e) {
    throw UserError(path.string() + ": malformed YAML: " + e.what());
  }
  for (const auto& o : overrides) apply_override(root, o);
  return root;
}

RunConfig load_run_config(const std::filesystem::path& path,
                          const std::vector<std::string>& overrides) {
  return parse_run_config(load_config_document(path, overrides), path.string());
}

}  // namespace kwm::launch
