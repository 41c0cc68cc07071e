// Project Gutenberg header/footer stripping.
#include "core/text/gutenberg.hpp"

#include <cstddef>

namespace kwm::text {
namespace {

// Offset of the first line that starts with `marker` at or after `from`, or npos.
std::size_t find_line_starting_with(std::string_view text, std::string_view marker,
                                    std::size_t from) {
  std::size_t line = from;
  while (line < text.size()) {
    if (text.compare(line, marker.size(), marker) == 0) return line;
    const std::size_t newline = text.find('\n', line);
    if (newline == std::string_view::npos) break;
    line = newline + 1;
  }
  return std::string_view::npos;
}

bool blank(std::string_view line) {
  return line.find_first_not_of(" \t\f\v") == std::string_view::npos;
}

}  // namespace

std::string strip_gutenberg(std::string_view text) {
  std::size_t begin = 0;
  const std::size_t start = find_line_starting_with(text, "*** START OF", 0);
  if (start != std::string_view::npos) {
    const std::size_t newline = text.find('\n', start);
    begin = newline == std::string_view::npos ? text.size() : newline + 1;
  }
  std::size_t end = find_line_starting_with(text, "*** END OF", begin);
  if (end == std::string_view::npos) end = text.size();
  std::string_view body = text.substr(begin, end - begin);

  // Drop blank lines at both ends; keep the final newline of the last kept line.
  while (!body.empty()) {
    const std::size_t newline = body.find('\n');
    if (newline == std::string_view::npos || !blank(body.substr(0, newline))) break;
    body.remove_prefix(newline + 1);
  }
  while (!body.empty()) {
    std::string_view trimmed = body;
    if (trimmed.back() == '\n') trimmed.remove_suffix(1);
    const std::size_t last_newline = trimmed.rfind('\n');
    const std::string_view last_line =
        last_newline == std::string_view::npos ? trimmed : trimmed.substr(last_newline + 1);
    if (!blank(last_line)) break;
    body = last_newline == std::string_view::npos ? std::string_view{}
                                                  : body.substr(0, last_newline + 1);
  }
  std::string out(body);
  if (!out.empty() && out.back() != '\n') out.push_back('\n');
  return out;
}

}  // namespace kwm::text
