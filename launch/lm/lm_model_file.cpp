// model.h5 layout: /theta (size x 1, flatten() order of docs/lm-model.md) with attributes
// format_version, gpt_config (YAML), tokenizer_fingerprint and learner on the root group.
#include "launch/lm/lm_model_file.hpp"

#include <yaml-cpp/yaml.h>

#include "distributed/checkpoint/hdf5_file.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {

void save_lm_model(const std::filesystem::path& path, const LmModelFile& model) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  std::error_code ignored;
  std::filesystem::remove(tmp, ignored);
  try {
    auto file = checkpoint::Hdf5File::create(tmp);
    file.write_matrix("/theta", model.parameters.flatten());
    file.set_attribute("/", "format_version", kLmModelFormatVersion);
    file.set_attribute("/", "gpt_config", YAML::Dump(lm::to_yaml(model.parameters.config)));
    file.set_attribute("/", "tokenizer_fingerprint", model.tokenizer_fingerprint);
    file.set_attribute("/", "learner", model.learner);
    file.close_and_sync();
    std::filesystem::rename(tmp, path);
    checkpoint::sync_directory(path.parent_path().empty() ? "." : path.parent_path());
  } catch (const std::exception& e) {
    std::filesystem::remove(tmp, ignored);
    throw UserError(path.string() + ": cannot write the model: " + e.what());
  }
}

LmModelFile load_lm_model(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path))
    throw UserError(path.string() + ": no such file (did kwm train finish this run?)");
  try {
    const auto file = checkpoint::Hdf5File::open(path);
    const std::int64_t version = file.int_attribute("/", "format_version");
    if (version != kLmModelFormatVersion)
      throw UserError(path.string() + ": model format version " + std::to_string(version) +
                      ", this kwm reads version " + std::to_string(kLmModelFormatVersion));
    LmModelFile model;
    const lm::GptConfig config =
        lm::parse_gpt_config(YAML::Load(file.string_attribute("/", "gpt_config")));
    model.parameters = lm::GptParameters<double>::zeros(config);
    const Eigen::MatrixXd theta = file.read_matrix("/theta");
    if (theta.cols() != 1 || theta.rows() != model.parameters.size())
      throw UserError(path.string() + ": /theta has " + std::to_string(theta.size()) +
                      " values, the model's config needs " +
                      std::to_string(model.parameters.size()));
    model.parameters.unflatten(theta.col(0));
    model.tokenizer_fingerprint = file.string_attribute("/", "tokenizer_fingerprint");
    model.learner = file.string_attribute("/", "learner");
    return model;
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    throw UserError(path.string() + ": cannot read the model: " + e.what());
  }
}

}  // namespace kwm::launch
