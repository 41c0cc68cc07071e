// Writes a whole file so that readers see either the old file or the complete new one.
#pragma once

#include <string>

namespace kwm::launch {

// Writes `content` to PATH.tmp.<pid> beside `path`, then renames it over `path`. Throws
// UserError naming the path when the folder is missing or the write fails (the temporary
// file is removed).
void write_file_atomically(const std::string& path, const std::string& content);

// Throws UserError when the folder that would hold `path` does not exist.
void check_output_folder(const std::string& path);

}  // namespace kwm::launch
