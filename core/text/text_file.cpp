// Corpus files: read, vetted as text, and normalised.
#include "core/text/text_file.hpp"

#include <cstddef>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace kwm::text {
namespace {

// Length of the valid UTF-8 sequence starting at text[i], or 0 when it is invalid (overlong
// forms, surrogates and code points above U+10FFFF count as invalid).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t length = 0;
  unsigned int code = 0;
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    code = lead & 0x1Fu;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    code = lead & 0x0Fu;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    code = lead & 0x07u;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0u) != 0x80u) return 0;
    code = (code << 6) | (byte(i + k) & 0x3Fu);
  }
  const bool overlong = (length == 3 && code < 0x800) || (length == 4 && code < 0x10000);
  const bool surrogate = code >= 0xD800 && code <= 0xDFFF;
  if (overlong || surrogate || code > 0x10FFFF) return 0;
  return length;
}

bool is_text_control(unsigned char c) {
  return c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\b';
}

}  // namespace

void check_plain_text(std::string_view text, const std::string& source) {
  if (text.empty()) throw std::invalid_argument(source + ": empty text file");
  std::size_t suspicious = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == 0) {
      throw std::invalid_argument(source + ": binary file (NUL byte at offset " +
                                  std::to_string(i) + "), not text");
    }
    const std::size_t length = utf8_sequence_length(text, i);
    if (length == 0) {
      ++suspicious;
      ++i;
      continue;
    }
    if (length == 1 && ((c < 0x20 && !is_text_control(c)) || c == 0x7F)) ++suspicious;
    i += length;
  }
  if (suspicious * 100 > text.size()) {
    throw std::invalid_argument(source + ": binary file, not text (" + std::to_string(suspicious) +
                                " of " + std::to_string(text.size()) +
                                " bytes are invalid UTF-8 or control characters)");
  }
}

std::string normalise_line_endings(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string read_text_file(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    throw std::runtime_error(path.string() +
                             ": text file not found (launch/fetch_data.sh fetches the corpus)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open text file");
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path.string() + ": read error");
  std::string text = std::move(content).str();
  check_plain_text(text, path.string());
  return text;
}

}  // namespace kwm::text
