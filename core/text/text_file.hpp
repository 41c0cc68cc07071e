// Reading corpus files: one place that refuses missing, empty and binary files by name, and that
// brings every file to the same line endings.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace kwm::text {

// The whole file as bytes. Throws std::runtime_error naming the path when it is missing or
// unreadable, and std::invalid_argument naming it when it is empty or binary (see
// check_plain_text).
std::string read_text_file(const std::filesystem::path& path);

// Throws std::invalid_argument naming `source` when `text` is empty, holds a NUL byte, or when
// more than 1% of its bytes are invalid UTF-8 or control characters other than tab, newline,
// carriage return, form feed and backspace (a fortune file uses one for overstriking).
void check_plain_text(std::string_view text, const std::string& source);

// CRLF and lone CR become LF, and a leading UTF-8 byte-order mark goes: the Gutenberg files mix
// both conventions and a tokenizer should not learn them.
std::string normalise_line_endings(std::string_view text);

}  // namespace kwm::text
