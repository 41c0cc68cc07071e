// The checkpoint reader opens files by path (as kwm train --resume does), so each fuzz input is
// written to one scratch file per process first.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace kwm::fuzz {

inline std::filesystem::path scratch_file(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("kwm-fuzz-" + std::to_string(::getpid()) + ".h5");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace kwm::fuzz
