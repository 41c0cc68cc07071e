// Loading a finished language-model run and checking its parts belong together.
#include "launch/lm/lm_run_artifacts.hpp"

#include <yaml-cpp/yaml.h>

#include "launch/lm/lm_data.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {

bool is_language_model_run(const std::filesystem::path& run_dir) {
  const auto path = run_dir / "config.yaml";
  if (!std::filesystem::exists(path)) return false;
  try {
    return is_language_model_config(YAML::LoadFile(path.string()));
  } catch (const YAML::Exception&) {
    return false;
  }
}

LmRun load_lm_run(const std::filesystem::path& run_dir) {
  const auto config_path = run_dir / "config.yaml";
  if (!std::filesystem::exists(config_path))
    throw UserError(config_path.string() + ": no such file (is " + run_dir.string() +
                    " a kwm train run directory?)");
  YAML::Node root;
  try {
    root = YAML::LoadFile(config_path.string());
  } catch (const YAML::Exception& e) {
    throw UserError(config_path.string() + ": malformed YAML: " + e.what());
  }
  LmRun run;
  // The resolved config carries vocab_size (filled in from the tokenizer at train time).
  if (root["model"]) root["model"].remove("vocab_size");
  run.config = parse_lm_run_config(root, config_path.string());
  run.model = load_lm_model(run_dir / "model.h5");
  run.tokenizer = load_run_tokenizer(run_dir);
  if (run.tokenizer->fingerprint() != run.model.tokenizer_fingerprint)
    throw UserError(run_dir.string() + ": the tokenizer (" + run.tokenizer->fingerprint() +
                    ") does not match the one model.h5 was trained with (" +
                    run.model.tokenizer_fingerprint + ")");
  run.length =
      run.config.train.length > 0 ? run.config.train.length : run.model.parameters.config.context;
  return run;
}

}  // namespace kwm::launch
