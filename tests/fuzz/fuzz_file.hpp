// The checkpoint reader opens files by path (as kwm train --resume does), so each fuzz input is
// written to one scratch file per process first, then opened as the target's variant says:
// guarded (KWM_FUZZ_GUARDED: Hdf5File::open, the metadata probe first, as kwm does) or raw
// (Hdf5File::open_unprobed: HDF5 parses the bytes in this process; a diagnostic of HDF5 itself).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "distributed/checkpoint/hdf5_file.hpp"

namespace kwm::fuzz {

inline std::filesystem::path scratch_file(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("kwm-fuzz-" + std::to_string(::getpid()) + ".h5");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

inline checkpoint::Hdf5File open_input(const std::uint8_t* data, std::size_t size) {
#ifdef KWM_FUZZ_GUARDED
  return checkpoint::Hdf5File::open(scratch_file(data, size));
#else
  return checkpoint::Hdf5File::open_unprobed(scratch_file(data, size));
#endif
}

}  // namespace kwm::fuzz
