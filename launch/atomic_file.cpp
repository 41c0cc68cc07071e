// Temporary file plus rename: the output appears only once it is complete.
#include "launch/atomic_file.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "launch/user_error.hpp"

namespace kwm::launch {

void check_output_folder(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw UserError(fmt::format("cannot write {}: folder {} does not exist", path, dir.string()));
  }
}

void write_file_atomically(const std::string& path, const std::string& content) {
  namespace fs = std::filesystem;
  check_output_folder(path);
  const fs::path target(path);
  std::error_code ec;
  const fs::path tmp = fs::path(path + fmt::format(".tmp.{}", ::getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      throw UserError(fmt::format("cannot write {}: write failed", tmp.string()));
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw UserError(fmt::format("cannot write {}: rename failed", path));
  }
}

}  // namespace kwm::launch
