// A model as YAML: its config (the `model:` section of a run configuration), its normalisation
// and theta, stored bit-exactly (base64 of little-endian float64). Recurrent state is not saved:
// a loaded model starts from reset().
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <yaml-cpp/yaml.h>

#include "core/models/diagonal_stack.hpp"
#include "core/models/innovation_ssm.hpp"

namespace kwm {

// Builds a freshly initialised model from a config node: `type: innovation_ssm` or
// `type: diagonal_stack` plus that model's keys (names as in InnovationSsmConfig /
// DiagonalStackConfig; missing keys take the defaults). Throws std::invalid_argument naming an
// unknown type, an unknown key or a bad value.
std::unique_ptr<SequenceModel> make_model(const YAML::Node& config);
InnovationSsmConfig innovation_ssm_config(const YAML::Node& config);
DiagonalStackConfig diagonal_stack_config(const YAML::Node& config);

// The config node make_model() accepts, with every key written out.
YAML::Node model_config(const SequenceModel& model);

// Whole model <-> YAML text: format, version, model config, normalization, theta.
std::string model_to_yaml(const SequenceModel& model);
std::unique_ptr<SequenceModel> model_from_yaml(const std::string& text);

// The same through a file; throws std::runtime_error naming the path when it cannot be written
// or read.
void save_model(const SequenceModel& model, const std::filesystem::path& path);
std::unique_ptr<SequenceModel> load_model(const std::filesystem::path& path);

}  // namespace kwm
