// 64-bit FNV-1a: the hash behind tokenizer fingerprints and token shard checksums. Not
// cryptographic; it detects accidents (a flipped byte, a swapped file), not tampering.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kwm::text {

inline constexpr std::uint64_t fnv1a64_offset = 0xcbf29ce484222325ULL;

// Continues the hash `hash` over `bytes` (start with fnv1a64_offset).
inline std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t hash = fnv1a64_offset) {
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// 16 lowercase hex digits.
inline std::string hex64(std::uint64_t value) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (std::size_t i = 16; i-- > 0;) {
    out[i] = digits[value & 0xF];
    value >>= 4;
  }
  return out;
}

}  // namespace kwm::text
