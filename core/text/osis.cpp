// OSIS to text: a small tag scanner, enough for the flat markup of a Bible translation.
#include "core/text/osis.hpp"

#include <cstddef>
#include <cstdint>
#include <stdexcept>

namespace kwm::text {
namespace {

struct Tag {
  std::string_view name;
  bool closing = false;
  bool self_closing = false;
};

Tag parse_tag(std::string_view inside) {  // what lies between '<' and '>'
  Tag tag;
  if (!inside.empty() && inside.front() == '/') {
    tag.closing = true;
    inside.remove_prefix(1);
  }
  if (!inside.empty() && inside.back() == '/') tag.self_closing = true;
  const std::size_t end = inside.find_first_of(" \t\r\n/");
  tag.name = inside.substr(0, end);
  return tag;
}

bool dropped_element(std::string_view name) { return name == "note" || name == "header"; }

void append_utf8(std::string& out, std::uint32_t code) {
  if (code < 0x80) {
    out.push_back(static_cast<char>(code));
  } else if (code < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code >> 6)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else if (code < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  }
}

// Appends the character that `entity` (without '&' and ';') stands for.
void decode_entity(std::string_view entity, std::string& out, const std::string& source) {
  if (entity == "amp") return out.push_back('&');
  if (entity == "lt") return out.push_back('<');
  if (entity == "gt") return out.push_back('>');
  if (entity == "quot") return out.push_back('"');
  if (entity == "apos") return out.push_back('\'');
  if (entity.size() > 1 && entity.front() == '#') {
    const bool hex = entity[1] == 'x' || entity[1] == 'X';
    const std::string digits(entity.substr(hex ? 2 : 1));
    std::size_t used = 0;
    unsigned long code = 0;
    try {
      code = std::stoul(digits, &used, hex ? 16 : 10);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == digits.size() && !digits.empty() && code > 0 && code <= 0x10FFFF) {
      return append_utf8(out, static_cast<std::uint32_t>(code));
    }
  }
  throw std::invalid_argument(source + ": unknown XML entity &" + std::string(entity) + ";");
}

// Trims every line, collapses runs of spaces and drops empty lines: in OSIS a line holding only
// tags (<chapter>, <div>) is markup, not a paragraph break.
std::string tidy_lines(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  std::size_t line_start = 0;
  while (line_start < raw.size()) {
    std::size_t line_end = raw.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = raw.size();
    bool space = false;
    bool any = false;
    for (std::size_t i = line_start; i < line_end; ++i) {
      const char c = raw[i];
      if (c == ' ' || c == '\t' || c == '\r') {
        space = any;
      } else {
        if (space) out.push_back(' ');
        space = false;
        any = true;
        out.push_back(c);
      }
    }
    if (any) out.push_back('\n');
    line_start = line_end + 1;
  }
  return out;
}

}  // namespace

std::string osis_to_text(std::string_view xml, const std::string& source) {
  if (xml.find("<osis") == std::string_view::npos) {
    throw std::invalid_argument(source + ": not an OSIS document (no <osis> element)");
  }
  std::string raw;
  raw.reserve(xml.size() / 4);
  int dropped_depth = 0;  // > 0 inside <note> or <header>
  std::size_t i = 0;
  while (i < xml.size()) {
    const char c = xml[i];
    if (c == '<') {
      if (xml.compare(i, 4, "<!--") == 0) {
        const std::size_t end = xml.find("-->", i + 4);
        if (end == std::string_view::npos) {
          throw std::invalid_argument(source + ": unterminated XML comment at offset " +
                                      std::to_string(i));
        }
        i = end + 3;
        continue;
      }
      const std::size_t end = xml.find('>', i + 1);
      if (end == std::string_view::npos) {
        throw std::invalid_argument(source + ": unterminated tag at offset " + std::to_string(i));
      }
      const Tag tag = parse_tag(xml.substr(i + 1, end - i - 1));
      if (dropped_element(tag.name) && !tag.self_closing) {
        dropped_depth += tag.closing ? -1 : 1;
        if (dropped_depth < 0) {
          throw std::invalid_argument(source + ": </" + std::string(tag.name) +
                                      "> without its opening tag at offset " + std::to_string(i));
        }
      }
      i = end + 1;
      continue;
    }
    if (dropped_depth == 0) {
      if (c == '&') {
        const std::size_t semicolon = xml.find(';', i + 1);
        if (semicolon == std::string_view::npos || semicolon - i > 12) {
          throw std::invalid_argument(source + ": unterminated XML entity at offset " +
                                      std::to_string(i));
        }
        decode_entity(xml.substr(i + 1, semicolon - i - 1), raw, source);
        i = semicolon + 1;
        continue;
      }
      raw.push_back(c);
    }
    ++i;
  }
  if (dropped_depth != 0) {
    throw std::invalid_argument(source + ": a <note> or <header> element is never closed");
  }
  return tidy_lines(raw);
}

}  // namespace kwm::text
