// Token shards: a tokenized split on disk (format in docs/text-data.md). A 128-byte header
// (magic, version, token width, vocab size, count, checksum, tokenizer fingerprint) and then the
// tokens, little-endian, 16 bits each when the vocabulary fits, else 32.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace kwm::text {

inline constexpr char kTokenShardMagic[8] = {'K', 'W', 'M', 'T', 'O', 'K', 'E', 'N'};
inline constexpr std::uint32_t kTokenShardVersion = 1;
inline constexpr std::size_t kTokenShardHeaderBytes = 128;
inline constexpr std::size_t kMaxFingerprintBytes = 87;  // 88-byte field, NUL-terminated

struct TokenShard {
  int token_bits = 16;  // 16 or 32
  int vocab_size = 0;
  std::string fingerprint;  // of the tokenizer that made the tokens
  std::vector<std::int32_t> tokens;
};

// Writes PATH atomically (PATH.tmp.<pid>, then rename). Throws std::invalid_argument when a token
// is outside [0, vocab_size), the vocabulary is empty or the fingerprint is too long; and
// std::runtime_error naming the path when the write fails.
void write_token_shard(const std::filesystem::path& path, const std::vector<std::int32_t>& tokens,
                       int vocab_size, const std::string& fingerprint);

// Reads and verifies a shard. Every error names the file: missing, truncated or padded, bad
// magic, unknown version or width, checksum mismatch, a token >= vocab size.
TokenShard read_token_shard(const std::filesystem::path& path);

}  // namespace kwm::text
