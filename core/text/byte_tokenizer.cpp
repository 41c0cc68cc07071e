// Byte tokenizer.
#include "core/text/byte_tokenizer.hpp"

#include <stdexcept>

#include "core/text/tokenizer_file.hpp"

namespace kwm::text {

std::vector<std::int32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<std::int32_t> tokens(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    tokens[i] = static_cast<unsigned char>(text[i]);
  }
  return tokens;
}

std::string ByteTokenizer::decode(const std::vector<std::int32_t>& tokens) const {
  std::string text(tokens.size(), '\0');
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] > 255) {
      throw std::invalid_argument("byte tokenizer: token " + std::to_string(tokens[i]) +
                                  " at position " + std::to_string(i) + " is outside [0, 256)");
    }
    text[i] = static_cast<char>(static_cast<unsigned char>(tokens[i]));
  }
  return text;
}

void ByteTokenizer::save(const std::filesystem::path& dir) const {
  write_tokenizer_yaml(dir, *this);
}

}  // namespace kwm::text
