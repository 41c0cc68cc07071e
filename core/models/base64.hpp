// Base64 (RFC 4648) of raw bytes, used to store theta bit-exactly in a YAML model file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kwm {

std::string base64_encode(const std::uint8_t* bytes, std::size_t count);
// Throws std::invalid_argument on a character outside the alphabet or a bad length.
std::vector<std::uint8_t> base64_decode(const std::string& text);

}  // namespace kwm
