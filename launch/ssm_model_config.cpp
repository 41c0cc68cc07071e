// YAML parsing and validation of state-space model files.
#include "launch/ssm_model_config.hpp"

#include <algorithm>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "launch/user_error.hpp"

namespace kwm::launch {

namespace {

using ssm::Index;
using ssm::Matrix;
using ssm::Vector;

class ConfigReader {
 public:
  explicit ConfigReader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw UserError(fmt::format("{}: key '{}' {}", path_, key, what));
  }

  double number(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar()) fail(key, "must be a number");
    try {
      return node.as<double>();
    } catch (const YAML::Exception&) {
      fail(key, fmt::format("must be a number; got '{}'", node.Scalar()));
    }
  }

  // A scalar (1x1) or a list of rows, each a list of numbers, all of one length.
  Matrix matrix(const YAML::Node& node, const std::string& key) const {
    if (node.IsScalar()) return Matrix::Constant(1, 1, number(node, key));
    if (!node.IsSequence() || node.size() == 0) {
      fail(key, "must be a matrix given as a list of rows (or a number for 1x1)");
    }
    const auto rows = static_cast<Index>(node.size());
    Index cols = -1;
    Matrix m;
    for (Index i = 0; i < rows; ++i) {
      const YAML::Node row = node[static_cast<std::size_t>(i)];
      if (!row.IsSequence()) {
        fail(key,
             fmt::format("must be a list of rows; row {} is not a list (write [[...]])", i + 1));
      }
      if (cols < 0) {
        cols = static_cast<Index>(row.size());
        m.resize(rows, cols);
      }
      if (static_cast<Index>(row.size()) != cols || cols == 0) {
        fail(key, fmt::format("must have rows of equal, non-zero length; row 1 has {} entries, "
                              "row {} has {}",
                              cols, i + 1, row.size()));
      }
      for (Index j = 0; j < cols; ++j) m(i, j) = number(row[static_cast<std::size_t>(j)], key);
    }
    return m;
  }

  Matrix matrix_of_shape(const YAML::Node& node, const std::string& key, Index rows,
                         Index cols) const {
    const Matrix m = matrix(node, key);
    if (m.rows() != rows || m.cols() != cols) {
      fail(key, fmt::format("must be a {}x{} matrix; got {}", rows, cols,
                            m.rows() != rows ? fmt::format("{} rows", m.rows())
                                             : fmt::format("{} columns", m.cols())));
    }
    return m;
  }

  // A list of numbers (or a scalar for length 1) of length n.
  Vector vector(const YAML::Node& node, const std::string& key, Index n) const {
    if (node.IsScalar()) {
      if (n != 1) fail(key, fmt::format("must be a list of {} numbers; got a single number", n));
      return Vector::Constant(1, number(node, key));
    }
    if (!node.IsSequence() || static_cast<Index>(node.size()) != n) {
      fail(key, fmt::format("must be a list of {} numbers; got {}", n,
                            node.IsSequence() ? fmt::format("{}", node.size()) : "something else"));
    }
    Vector v(n);
    for (Index i = 0; i < n; ++i) {
      const YAML::Node item = node[static_cast<std::size_t>(i)];
      if (item.IsSequence()) fail(key, fmt::format("must be a flat list of {} numbers", n));
      v(i) = number(item, key);
    }
    return v;
  }

  std::vector<std::string> names(const YAML::Node& node, const std::string& key) const {
    if (!node.IsSequence()) fail(key, "must be a list of names");
    std::vector<std::string> out;
    for (const auto& item : node) {
      if (!item.IsScalar() || item.Scalar().empty()) fail(key, "must be a list of names");
      out.push_back(item.Scalar());
    }
    return out;
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

YAML::Node parse_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw UserError(fmt::format("model file {} not found", path));
  }
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::ParserException& e) {
    throw UserError(fmt::format("{}: malformed YAML at line {} column {}: {}", path,
                                e.mark.line + 1, e.mark.column + 1, e.msg));
  } catch (const YAML::Exception& e) {
    throw UserError(fmt::format("{}: cannot read: {}", path, e.what()));
  }
}

}  // namespace

SsmModelConfig load_ssm_model_config(const std::string& path) {
  const YAML::Node root = parse_file(path);
  const ConfigReader in(path);
  if (!root.IsMap()) {
    throw UserError(fmt::format("{}: expected a mapping with keys F, H, Q, R, ...", path));
  }
  static const std::set<std::string> known = {
      "F",    "H",          "Q", "R", "B", "x0", "P0", "init", "inputs", "states", "observations",
      "name", "description"};
  for (const auto& kv : root) {
    const auto key = kv.first.as<std::string>();
    if (!known.contains(key)) {
      throw UserError(fmt::format("{}: unknown key '{}'; expected one of: {}", path, key,
                                  fmt::join(known, ", ")));
    }
  }
  for (const char* key : {"F", "H", "Q", "R"}) {
    if (!root[key]) in.fail(key, "is required");
  }

  SsmModelConfig cfg;
  ssm::LinearGaussianModel& m = cfg.model;
  m.F = in.matrix(root["F"], "F");
  const Index n = m.F.rows();
  if (m.F.cols() != n)
    in.fail("F", fmt::format("must be a square matrix; got {}x{}", n, m.F.cols()));
  m.H = in.matrix(root["H"], "H");
  if (m.H.cols() != n) {
    in.fail("H", fmt::format("must have {} columns (one per state); got {}", n, m.H.cols()));
  }
  const Index p = m.H.rows();
  m.Q = in.matrix_of_shape(root["Q"], "Q", n, n);
  m.R = in.matrix_of_shape(root["R"], "R", p, p);

  if (root["B"] || root["inputs"]) {
    if (!root["B"]) in.fail("B", "is required when 'inputs' is given");
    if (!root["inputs"])
      in.fail("inputs", "is required when 'B' is given (one column name per column of B)");
    cfg.inputs = in.names(root["inputs"], "inputs");
    m.B = in.matrix_of_shape(root["B"], "B", n, static_cast<Index>(cfg.inputs.size()));
  } else {
    m.B.resize(n, 0);
  }
  if (root["observations"]) {
    cfg.observations = in.names(root["observations"], "observations");
    if (static_cast<Index>(cfg.observations.size()) != p) {
      in.fail("observations", fmt::format("must name {} columns (H has {} rows); got {}", p, p,
                                          cfg.observations.size()));
    }
  }
  if (root["states"]) {
    cfg.states = in.names(root["states"], "states");
    if (static_cast<Index>(cfg.states.size()) != n) {
      in.fail("states", fmt::format("must name {} states; got {}", n, cfg.states.size()));
    }
  } else {
    for (Index i = 0; i < n; ++i) cfg.states.push_back(std::to_string(i));
  }

  // Initialisation.
  std::string kind = "known";
  double variance = 1e7;
  if (const YAML::Node init = root["init"]) {
    if (init.IsScalar()) {
      kind = init.Scalar();
    } else if (init.IsMap()) {
      if (!init["type"]) in.fail("init", "must have a 'type' (known, diffuse, large_variance)");
      kind = init["type"].as<std::string>();
      if (init["variance"]) variance = in.number(init["variance"], "init.variance");
      for (const auto& kv : init) {
        const auto sub = kv.first.as<std::string>();
        if (sub != "type" && sub != "variance") {
          in.fail("init", fmt::format("has an unknown key '{}'; expected type, variance", sub));
        }
      }
    } else {
      in.fail("init", "must be known, diffuse or {type: large_variance, variance: V}");
    }
  }
  const Vector x0 = root["x0"] ? in.vector(root["x0"], "x0", n) : Vector(Vector::Zero(n));
  if (kind == "known") {
    if (!root["x0"]) in.fail("x0", "is required for a known initial state (or set init: diffuse)");
    if (!root["P0"]) in.fail("P0", "is required for a known initial state (or set init: diffuse)");
    m.init = ssm::InitialState::known(x0, in.matrix_of_shape(root["P0"], "P0", n, n));
  } else if (kind == "diffuse") {
    if (root["P0"]) in.fail("P0", "must not be given with init: diffuse (P0 = kappa I)");
    m.init = ssm::InitialState::exact_diffuse(n);
    m.init.mean = x0;
  } else if (kind == "large_variance") {
    if (root["P0"]) in.fail("P0", "must not be given with init: large_variance (P0 = variance I)");
    if (!(variance > 0) || !std::isfinite(variance)) {
      in.fail("init.variance", fmt::format("must be a positive number; got {}", variance));
    }
    m.init = ssm::InitialState::large_variance(n, variance);
    m.init.mean = x0;
  } else {
    in.fail("init", fmt::format("must be known, diffuse or large_variance; got '{}'", kind));
  }
  cfg.init_kind = kind;

  try {
    m.validate();
  } catch (const ssm::ModelError& e) {
    throw UserError(fmt::format("{}: key {}", path, e.what()));
  }
  return cfg;
}

}  // namespace kwm::launch
