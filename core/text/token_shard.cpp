// Token shard writer and reader.
#include "core/text/token_shard.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "core/text/fnv1a.hpp"
#include "core/text/tokenizer_file.hpp"

namespace kwm::text {
namespace {

// Header field offsets (docs/text-data.md).
constexpr std::size_t kVersionAt = 8;
constexpr std::size_t kBitsAt = 12;
constexpr std::size_t kVocabAt = 16;
constexpr std::size_t kHeaderBytesAt = 20;
constexpr std::size_t kCountAt = 24;
constexpr std::size_t kChecksumAt = 32;
constexpr std::size_t kFingerprintAt = 40;

void put_le(std::string& bytes, std::size_t at, std::uint64_t value, std::size_t width) {
  for (std::size_t i = 0; i < width; ++i) {
    bytes[at + i] = static_cast<char>(static_cast<unsigned char>(value >> (8 * i)));
  }
}

std::uint64_t get_le(const std::string& bytes, std::size_t at, std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    value |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
  }
  return value;
}

// Over the header with the checksum field read as zero, then the payload: any flipped byte counts.
std::uint64_t shard_checksum(const std::string& bytes) {
  std::uint64_t hash = fnv1a64(std::string_view(bytes).substr(0, kChecksumAt));
  hash = fnv1a64(std::string_view("\0\0\0\0\0\0\0\0", 8), hash);
  return fnv1a64(std::string_view(bytes).substr(kChecksumAt + 8), hash);
}

}  // namespace

void write_token_shard(const std::filesystem::path& path, const std::vector<std::int32_t>& tokens,
                       int vocab_size, const std::string& fingerprint) {
  if (vocab_size <= 0) {
    throw std::invalid_argument(path.string() + ": token shard needs a positive vocab size");
  }
  if (fingerprint.size() > kMaxFingerprintBytes || fingerprint.find('\0') != std::string::npos) {
    throw std::invalid_argument(path.string() + ": tokenizer fingerprint longer than " +
                                std::to_string(kMaxFingerprintBytes) + " bytes");
  }
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab_size) {
      throw std::invalid_argument(path.string() + ": token " + std::to_string(tokens[i]) +
                                  " at index " + std::to_string(i) + " is outside [0, " +
                                  std::to_string(vocab_size) + ")");
    }
  }
  const std::size_t width = vocab_size <= 65536 ? 2 : 4;
  std::string bytes(kTokenShardHeaderBytes + width * tokens.size(), '\0');
  std::memcpy(bytes.data(), kTokenShardMagic, sizeof kTokenShardMagic);
  put_le(bytes, kVersionAt, kTokenShardVersion, 4);
  put_le(bytes, kBitsAt, 8 * width, 4);
  put_le(bytes, kVocabAt, static_cast<std::uint64_t>(vocab_size), 4);
  put_le(bytes, kHeaderBytesAt, kTokenShardHeaderBytes, 4);
  put_le(bytes, kCountAt, tokens.size(), 8);
  std::copy(fingerprint.begin(), fingerprint.end(),
            bytes.begin() + static_cast<std::ptrdiff_t>(kFingerprintAt));
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    put_le(bytes, kTokenShardHeaderBytes + width * i, static_cast<std::uint32_t>(tokens[i]), width);
  }
  put_le(bytes, kChecksumAt, shard_checksum(bytes), 8);
  write_file_atomically(path, bytes);
}

TokenShard read_token_shard(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(name + ": token shard not found or unreadable");
  std::ostringstream content;
  content << in.rdbuf();
  const std::string bytes = std::move(content).str();

  if (bytes.size() < kTokenShardHeaderBytes) {
    throw std::runtime_error(name + ": truncated token shard (" + std::to_string(bytes.size()) +
                             " bytes; the header alone is " +
                             std::to_string(kTokenShardHeaderBytes) + ")");
  }
  if (std::memcmp(bytes.data(), kTokenShardMagic, sizeof kTokenShardMagic) != 0) {
    throw std::runtime_error(name + ": not a KWM token shard (bad magic)");
  }
  const auto version = get_le(bytes, kVersionAt, 4);
  if (version != kTokenShardVersion || get_le(bytes, kHeaderBytesAt, 4) != kTokenShardHeaderBytes) {
    throw std::runtime_error(name + ": token shard format version " + std::to_string(version) +
                             "; this build reads version " + std::to_string(kTokenShardVersion));
  }
  const auto bits = get_le(bytes, kBitsAt, 4);
  if (bits != 16 && bits != 32) {
    throw std::runtime_error(name + ": token width " + std::to_string(bits) +
                             " bits; a shard holds 16- or 32-bit tokens");
  }
  const std::size_t width = bits / 8;
  const auto count = get_le(bytes, kCountAt, 8);
  const std::size_t payload = bytes.size() - kTokenShardHeaderBytes;
  const bool truncated = count > payload / width;
  if (truncated || payload != count * width) {
    throw std::runtime_error(name + ": " + (truncated ? "truncated" : "oversized") +
                             " token shard: the header says " + std::to_string(count) +
                             " tokens of " + std::to_string(width) + " bytes but the payload has " +
                             std::to_string(payload) + " bytes");
  }
  const auto stored = get_le(bytes, kChecksumAt, 8);
  const auto computed = shard_checksum(bytes);
  if (stored != computed) {
    throw std::runtime_error(name + ": token shard checksum mismatch (stored " + hex64(stored) +
                             ", computed " + hex64(computed) + "): the file is corrupt");
  }

  TokenShard shard;
  shard.token_bits = static_cast<int>(bits);
  const auto vocab = get_le(bytes, kVocabAt, 4);
  if (vocab == 0 || vocab > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()) ||
      (bits == 16 && vocab > 65536)) {
    throw std::runtime_error(name + ": token shard vocab size " + std::to_string(vocab) +
                             " is out of range");
  }
  shard.vocab_size = static_cast<int>(vocab);
  const char* field = bytes.data() + kFingerprintAt;
  shard.fingerprint.assign(field, strnlen(field, kMaxFingerprintBytes + 1));
  shard.tokens.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto token = get_le(bytes, kTokenShardHeaderBytes + width * i, width);
    if (token >= vocab) {
      throw std::runtime_error(name + ": token " + std::to_string(token) + " at index " +
                               std::to_string(i) + " is >= the vocab size " +
                               std::to_string(vocab));
    }
    shard.tokens[i] = static_cast<std::int32_t>(token);
  }
  return shard;
}

}  // namespace kwm::text
