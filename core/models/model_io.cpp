// YAML serialisation of models: configs by key, doubles in shortest round-trip decimal, theta in
// base64 so millions of parameters stay one compact, bit-exact scalar.
#include "core/models/model_io.hpp"

#include <bit>
#include <charconv>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/models/base64.hpp"

namespace kwm {
namespace {

static_assert(std::endian::native == std::endian::little,
              "model files store theta as little-endian float64");

constexpr const char* kFormat = "kwm-model";
constexpr int kVersion = 1;

std::string format_double(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

double parse_double(const YAML::Node& node, const std::string& key) {
  const std::string text = node.as<std::string>();
  double value = 0.0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  if (result.ec != std::errc() || result.ptr != text.data() + text.size()) {
    throw std::invalid_argument("model." + key + " must be a number; got '" + text + "'");
  }
  return value;
}

void check_keys(const YAML::Node& config, const std::set<std::string>& known) {
  if (!config.IsMap()) throw std::invalid_argument("model config must be a map");
  for (const auto& entry : config) {
    const std::string key = entry.first.as<std::string>();
    if (!known.count(key)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw std::invalid_argument("model." + key + " is not a known key; known: " + list);
    }
  }
}

template <typename T>
void read_scalar(const YAML::Node& config, const std::string& key, T& value) {
  if (!config[key]) return;
  try {
    if constexpr (std::is_same_v<T, double>) {
      value = parse_double(config[key], key);
    } else {
      value = config[key].as<T>();
    }
  } catch (const YAML::Exception&) {
    throw std::invalid_argument("model." + key + " has the wrong type: '" +
                                config[key].as<std::string>() + "'");
  }
}

YAML::Node vector_node(const Eigen::VectorXd& v) {
  YAML::Node node(YAML::NodeType::Sequence);
  for (Index i = 0; i < v.size(); ++i) node.push_back(format_double(v(i)));
  node.SetStyle(YAML::EmitterStyle::Flow);
  return node;
}

Eigen::VectorXd read_vector(const YAML::Node& node, const std::string& key) {
  if (!node || !node.IsSequence()) throw std::invalid_argument(key + " must be a list of numbers");
  Eigen::VectorXd v(static_cast<Index>(node.size()));
  for (std::size_t i = 0; i < node.size(); ++i)
    v(static_cast<Index>(i)) = parse_double(node[i], key);
  return v;
}

}  // namespace

InnovationSsmConfig innovation_ssm_config(const YAML::Node& config) {
  check_keys(config, {"type", "n_in", "n_out", "output_lags", "states", "feedthrough",
                      "innovation_gain", "initial_radius", "seed"});
  InnovationSsmConfig c;
  read_scalar(config, "n_in", c.n_in);
  read_scalar(config, "n_out", c.n_out);
  read_scalar(config, "output_lags", c.output_lags);
  read_scalar(config, "states", c.states);
  read_scalar(config, "feedthrough", c.feedthrough);
  read_scalar(config, "innovation_gain", c.innovation_gain);
  read_scalar(config, "initial_radius", c.initial_radius);
  read_scalar(config, "seed", c.seed);
  c.validate();
  return c;
}

DiagonalStackConfig diagonal_stack_config(const YAML::Node& config) {
  check_keys(config,
             {"type", "n_in", "n_out", "output_lags", "width", "states", "layers", "mixer",
              "mixer_hidden", "sensitivity", "min_radius", "max_radius", "max_phase", "seed"});
  DiagonalStackConfig c;
  read_scalar(config, "n_in", c.n_in);
  read_scalar(config, "n_out", c.n_out);
  read_scalar(config, "output_lags", c.output_lags);
  read_scalar(config, "width", c.width);
  read_scalar(config, "states", c.states);
  read_scalar(config, "layers", c.layers);
  if (config["mixer"]) c.mixer = mixer_kind_from_string(config["mixer"].as<std::string>());
  read_scalar(config, "mixer_hidden", c.mixer_hidden);
  if (config["sensitivity"]) {
    c.sensitivity = sensitivity_mode_from_string(config["sensitivity"].as<std::string>());
  }
  read_scalar(config, "min_radius", c.min_radius);
  read_scalar(config, "max_radius", c.max_radius);
  read_scalar(config, "max_phase", c.max_phase);
  read_scalar(config, "seed", c.seed);
  c.validate();
  return c;
}

std::unique_ptr<SequenceModel> make_model(const YAML::Node& config) {
  if (!config || !config.IsMap() || !config["type"]) {
    throw std::invalid_argument("model config needs a type: innovation_ssm or diagonal_stack");
  }
  const std::string type = config["type"].as<std::string>();
  if (type == "innovation_ssm")
    return std::make_unique<InnovationSsm>(innovation_ssm_config(config));
  if (type == "diagonal_stack")
    return std::make_unique<DiagonalStack>(diagonal_stack_config(config));
  throw std::invalid_argument("model.type must be innovation_ssm or diagonal_stack; got '" + type +
                              "'");
}

YAML::Node model_config(const SequenceModel& model) {
  YAML::Node node;
  node["type"] = model.type_name();
  if (const auto* ssm = dynamic_cast<const InnovationSsm*>(&model)) {
    const InnovationSsmConfig& c = ssm->config();
    node["n_in"] = c.n_in;
    node["n_out"] = c.n_out;
    node["output_lags"] = c.output_lags;
    node["states"] = c.states;
    node["feedthrough"] = c.feedthrough;
    node["innovation_gain"] = c.innovation_gain;
    node["initial_radius"] = format_double(c.initial_radius);
    node["seed"] = c.seed;
  } else if (const auto* stack = dynamic_cast<const DiagonalStack*>(&model)) {
    const DiagonalStackConfig& c = stack->config();
    node["n_in"] = c.n_in;
    node["n_out"] = c.n_out;
    node["output_lags"] = c.output_lags;
    node["width"] = c.width;
    node["states"] = c.states;
    node["layers"] = c.layers;
    node["mixer"] = to_string(c.mixer);
    node["mixer_hidden"] = c.mixer_hidden;
    node["sensitivity"] = to_string(c.sensitivity);
    node["min_radius"] = format_double(c.min_radius);
    node["max_radius"] = format_double(c.max_radius);
    node["max_phase"] = format_double(c.max_phase);
    node["seed"] = c.seed;
  } else {
    throw std::invalid_argument("model_config: unknown model type " + model.type_name());
  }
  return node;
}

std::string model_to_yaml(const SequenceModel& model) {
  YAML::Node root;
  root["format"] = kFormat;
  root["version"] = kVersion;
  root["model"] = model_config(model);
  const Normalization& n = model.normalization();
  root["normalization"]["input_mean"] = vector_node(n.input.mean);
  root["normalization"]["input_scale"] = vector_node(n.input.scale);
  root["normalization"]["output_mean"] = vector_node(n.output.mean);
  root["normalization"]["output_scale"] = vector_node(n.output.scale);
  const Eigen::VectorXd& theta = model.theta();
  root["theta"]["size"] = theta.size();
  root["theta"]["encoding"] = "base64 float64 little-endian";
  root["theta"]["data"] = base64_encode(reinterpret_cast<const std::uint8_t*>(theta.data()),
                                        static_cast<std::size_t>(theta.size()) * sizeof(double));
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

std::unique_ptr<SequenceModel> model_from_yaml(const std::string& text) {
  const YAML::Node root = YAML::Load(text);
  if (!root["format"] || root["format"].as<std::string>() != kFormat) {
    throw std::invalid_argument(std::string("not a model file: format must be ") + kFormat);
  }
  if (root["version"].as<int>() != kVersion) {
    throw std::invalid_argument("model file version " + root["version"].as<std::string>() +
                                " is not supported (this build reads " + std::to_string(kVersion) +
                                ")");
  }
  std::unique_ptr<SequenceModel> model = make_model(root["model"]);

  const YAML::Node theta_node = root["theta"];
  const std::vector<std::uint8_t> bytes = base64_decode(theta_node["data"].as<std::string>());
  const Index size = theta_node["size"].as<Index>();
  if (size != model->parameter_count() ||
      bytes.size() != static_cast<std::size_t>(size) * sizeof(double)) {
    throw std::invalid_argument("model file theta has " + std::to_string(bytes.size() / 8) +
                                " values; the config needs " +
                                std::to_string(model->parameter_count()));
  }
  Eigen::VectorXd theta(size);
  std::memcpy(theta.data(), bytes.data(), bytes.size());
  model->set_theta(theta);

  const YAML::Node n = root["normalization"];
  Normalization normalization;
  normalization.input = {read_vector(n["input_mean"], "normalization.input_mean"),
                         read_vector(n["input_scale"], "normalization.input_scale")};
  normalization.output = {read_vector(n["output_mean"], "normalization.output_mean"),
                          read_vector(n["output_scale"], "normalization.output_scale")};
  model->set_normalization(normalization);
  return model;
}

void save_model(const SequenceModel& model, const std::filesystem::path& path) {
  std::ofstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot write model file " + path.string());
  file << model_to_yaml(model);
  if (!file) throw std::runtime_error("writing model file " + path.string() + " failed");
}

std::unique_ptr<SequenceModel> load_model(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot read model file " + path.string());
  std::ostringstream text;
  text << file.rdbuf();
  try {
    return model_from_yaml(text.str());
  } catch (const std::exception& error) {
    throw std::runtime_error(path.string() + ": " + error.what());
  }
}

}  // namespace kwm
