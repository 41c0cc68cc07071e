// The byte tokenizer: every byte is its own token (vocabulary 256), so any text round-trips.
#pragma once

#include "core/text/tokenizer.hpp"

namespace kwm::text {

class ByteTokenizer final : public Tokenizer {
 public:
  std::string name() const override { return "byte"; }
  int vocab_size() const override { return 256; }
  std::vector<std::int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<std::int32_t>& tokens) const override;
  std::string fingerprint() const override { return "byte-256"; }
  void save(const std::filesystem::path& dir) const override;
};

}  // namespace kwm::text
