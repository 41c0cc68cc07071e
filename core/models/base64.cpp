// Base64 encoding and decoding with '=' padding.
#include "core/models/base64.hpp"

#include <array>
#include <stdexcept>

namespace kwm {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int digit_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::string base64_encode(const std::uint8_t* bytes, std::size_t count) {
  std::string text;
  text.reserve((count + 2) / 3 * 4);
  for (std::size_t i = 0; i < count; i += 3) {
    const std::uint32_t b0 = bytes[i];
    const std::uint32_t b1 = i + 1 < count ? bytes[i + 1] : 0u;
    const std::uint32_t b2 = i + 2 < count ? bytes[i + 2] : 0u;
    const std::uint32_t word = (b0 << 16) | (b1 << 8) | b2;
    text += kAlphabet[(word >> 18) & 63u];
    text += kAlphabet[(word >> 12) & 63u];
    text += i + 1 < count ? kAlphabet[(word >> 6) & 63u] : '=';
    text += i + 2 < count ? kAlphabet[word & 63u] : '=';
  }
  return text;
}

std::vector<std::uint8_t> base64_decode(const std::string& text) {
  if (text.size() % 4 != 0) {
    throw std::invalid_argument("base64 text length must be a multiple of 4; got " +
                                std::to_string(text.size()));
  }
  std::vector<std::uint8_t> bytes;
  bytes.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::array<int, 4> d{};
    int padding = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + static_cast<std::size_t>(k)];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        d[static_cast<std::size_t>(k)] = 0;
        ++padding;
        continue;
      }
      d[static_cast<std::size_t>(k)] = digit_value(c);
      if (d[static_cast<std::size_t>(k)] < 0 || padding > 0) {
        throw std::invalid_argument("base64 text has an invalid character at " +
                                    std::to_string(i + static_cast<std::size_t>(k)));
      }
    }
    const std::uint32_t word =
        (static_cast<std::uint32_t>(d[0]) << 18) | (static_cast<std::uint32_t>(d[1]) << 12) |
        (static_cast<std::uint32_t>(d[2]) << 6) | static_cast<std::uint32_t>(d[3]);
    bytes.push_back(static_cast<std::uint8_t>(word >> 16));
    if (padding < 2) bytes.push_back(static_cast<std::uint8_t>((word >> 8) & 255u));
    if (padding < 1) bytes.push_back(static_cast<std::uint8_t>(word & 255u));
  }
  return bytes;
}

}  // namespace kwm
