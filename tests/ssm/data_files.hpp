// Locates the fetched data files for tests: $KWM_DATA_DIR, else $KWM_SOURCE_DIR/data (the build
// defines KWM_SOURCE_DIR). A missing file is a test failure that says how to fetch it.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace kwm::test {

inline std::string data_file(const std::string& name) {
  std::filesystem::path dir;
  if (const char* env = std::getenv("KWM_DATA_DIR"); env != nullptr && *env != '\0') {
    dir = env;
  } else {
    dir = std::filesystem::path(KWM_SOURCE_DIR) / "data";
  }
  const auto path = dir / name;
  if (!std::filesystem::exists(path)) {
    throw std::runtime_error("data file " + path.string() +
                             " is missing: run launch/fetch_data.sh (or set KWM_DATA_DIR)");
  }
  return path.string();
}

}  // namespace kwm::test
