// Token shards: round trips at both widths, and every kind of corruption named with the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include "core/text/token_shard.hpp"
#include "tests/text/text_test_support.hpp"

namespace kwm::text {
namespace {

using testing::read_file;
using testing::ScratchDir;
using testing::write_file;

std::vector<std::int32_t> ramp(std::size_t count, std::int32_t vocab) {
  std::vector<std::int32_t> tokens(count);
  for (std::size_t i = 0; i < count; ++i) {
    tokens[i] = static_cast<std::int32_t>((i * 7919) % static_cast<std::size_t>(vocab));
  }
  return tokens;
}

TEST(TokenShard, RoundTripsSixteenBitTokens) {
  ScratchDir dir;
  const auto tokens = ramp(1000, 65536);
  write_token_shard(dir / "train.tok", tokens, 65536, "bpe-65536-0123456789abcdef");
  EXPECT_EQ(std::filesystem::file_size(dir / "train.tok"), 128u + 2u * 1000u);
  const TokenShard shard = read_token_shard(dir / "train.tok");
  EXPECT_EQ(shard.token_bits, 16);
  EXPECT_EQ(shard.vocab_size, 65536);
  EXPECT_EQ(shard.fingerprint, "bpe-65536-0123456789abcdef");
  EXPECT_EQ(shard.tokens, tokens);
}

TEST(TokenShard, RoundTripsThirtyTwoBitTokensAndTheEmptyShard) {
  ScratchDir dir;
  const auto tokens = ramp(300, 100000);
  write_token_shard(dir / "wide.tok", tokens, 100000, "bpe-100000-x");
  const TokenShard wide = read_token_shard(dir / "wide.tok");
  EXPECT_EQ(wide.token_bits, 32);
  EXPECT_EQ(wide.tokens, tokens);

  write_token_shard(dir / "empty.tok", {}, 256, "byte-256");
  EXPECT_TRUE(read_token_shard(dir / "empty.tok").tokens.empty());
}

TEST(TokenShard, LittleEndianLayoutAsDocumented) {
  ScratchDir dir;
  write_token_shard(dir / "tiny.tok", {0x0102, 0x00ff}, 1000, "byte-256");
  const std::string bytes = read_file(dir / "tiny.tok");
  EXPECT_EQ(bytes.substr(0, 8), "KWMTOKEN");
  EXPECT_EQ(bytes[8], 1);    // version
  EXPECT_EQ(bytes[12], 16);  // token bits
  EXPECT_EQ(static_cast<unsigned char>(bytes[16]), 1000 % 256);
  EXPECT_EQ(bytes[24], 2);  // count
  EXPECT_EQ(bytes.substr(40, 8), "byte-256");
  EXPECT_EQ(bytes[128], 0x02);
  EXPECT_EQ(bytes[129], 0x01);
  EXPECT_EQ(static_cast<unsigned char>(bytes[130]), 0xff);
  EXPECT_EQ(bytes[131], 0x00);
}

TEST(TokenShard, WriterRefusesTokensOutsideTheVocabulary) {
  ScratchDir dir;
  KWM_EXPECT_THROW_WITH(write_token_shard(dir / "bad.tok", {1, 256}, 256, "byte-256"),
                        std::invalid_argument, "token 256 at index 1");
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.tok"));
  KWM_EXPECT_THROW_WITH(write_token_shard(dir / "bad.tok", {1}, 256, std::string(88, 'f')),
                        std::invalid_argument, "fingerprint longer");
}

TEST(TokenShard, CorruptionIsDetectedAndNamesTheFile) {
  ScratchDir dir;
  const auto path = dir / "corrupt.tok";
  write_token_shard(path, ramp(500, 1000), 1000, "byte-256");
  const std::string good = read_file(path);

  // A flipped bit anywhere (payload, header field, fingerprint) breaks the checksum.
  for (const std::size_t at : {std::size_t{300}, std::size_t{45}, good.size() - 1}) {
    std::string flipped = good;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
    write_file(path, flipped);
    KWM_EXPECT_THROW_WITH(read_token_shard(path), std::runtime_error,
                          path.string() + ": token shard checksum mismatch");
  }
  write_file(path, good.substr(0, good.size() - 3));
  KWM_EXPECT_THROW_WITH(read_token_shard(path), std::runtime_error,
                        path.string() + ": truncated token shard");
  write_file(path, good.substr(0, 100));
  KWM_EXPECT_THROW_WITH(read_token_shard(path), std::runtime_error,
                        path.string() + ": truncated token shard (100 bytes");
  write_file(path, good + "xx");
  KWM_EXPECT_THROW_WITH(read_token_shard(path), std::runtime_error, "oversized token shard");
  std::string magic = good;
  magic[0] = 'X';
  write_file(path, magic);
  KWM_EXPECT_THROW_WITH(read_token_shard(path), std::runtime_error,
                        path.string() + ": not a KWM token shard");
  std::string version = good;
  version[8] = 2;
  write_file(path, version);
  KWM_EXPECT_THROW_WITH(read_token_shard(path), std::runtime_error, "format version 2");
  KWM_EXPECT_THROW_WITH(read_token_shard(dir / "absent.tok"), std::runtime_error, "absent.tok");
}

TEST(TokenShard, ATokenBeyondTheVocabularyIsNamedEvenWithAValidChecksum) {
  // The writer refuses such a shard, so patch one (vocab 10) and recompute its checksum the way
  // docs/text-data.md defines it: the range check must still catch the token.
  ScratchDir dir;
  const auto path = dir / "range.tok";
  ScratchDir other;
  write_token_shard(other / "small.tok", {3, 9, 1}, 10, "byte-256");
  std::string bytes = read_file(other / "small.tok");
  bytes[128 + 4] = 11;
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const unsigned char c = (i >= 32 && i < 40) ? 0 : static_cast<unsigned char>(bytes[i]);
    hash = (hash ^ c) * 0x100000001b3ULL;
  }
  for (std::size_t i = 0; i < 8; ++i) bytes[32 + i] = static_cast<char>((hash >> (8 * i)) & 0xff);
  write_file(path, bytes);
  KWM_EXPECT_THROW_WITH(read_token_shard(path), std::runtime_error,
                        path.string() + ": token 11 at index 2 is >= the vocab size 10");
}

}  // namespace
}  // namespace kwm::text
