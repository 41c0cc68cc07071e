// libFuzzer target: arbitrary text as a run config (what kwm train --config reads). Malformed
// YAML and every wrong key, type or value must end in a UserError, as load_run_config turns
// them into exit code 2; any other exception, a crash or a sanitizer report is a finding.
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "launch/training/run_config.hpp"
#include "launch/user_error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception&) {
    return 0;  // load_run_config reports this as "malformed YAML" (UserError)
  }
  try {
    (void)kwm::launch::parse_run_config(root, "fuzz.yaml");
  } catch (const kwm::launch::UserError&) {
  }
  return 0;
}
