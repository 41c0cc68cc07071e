// Byte and BPE tokenizers: round trips, deterministic BPE training, save/load and fingerprints.
#include <gtest/gtest.h>
#include <unistd.h>

#include "core/text/bpe_tokenizer.hpp"
#include "core/text/byte_tokenizer.hpp"
#include "tests/text/text_test_support.hpp"

namespace kwm::text {
namespace {

using testing::read_file;
using testing::ScratchDir;
using testing::write_file;

// A small training text: a few hundred distinct lines so BPE has merges to learn.
std::string training_text() {
  static const char* const words[] = {"whale", "ship", "sea", "captain", "harpoon", "the", "and",
                                      "of",    "to",   "a",   "in",      "he",      "was", "Ahab"};
  std::string text;
  std::uint32_t state = 12345;
  for (int line = 0; line < 400; ++line) {
    for (int w = 0; w < 9; ++w) {
      state = state * 1664525u + 1013904223u;
      text += words[(state >> 16) % 14];
      text += w == 8 ? ".\n" : " ";
    }
    if (line % 7 == 0) text += "\n";
  }
  return text;
}

BpeOptions small_bpe() {
  BpeOptions options;
  options.vocab_size = 320;
  options.seed = 7;
  return options;
}

TEST(ByteTokenizer, RoundTripsEveryByte) {
  const ByteTokenizer bytes;
  std::string text;
  for (int c = 0; c < 256; ++c) text.push_back(static_cast<char>(c));
  text += "Call me Ishmael.\n";
  const auto tokens = bytes.encode(text);
  ASSERT_EQ(tokens.size(), text.size());
  EXPECT_EQ(tokens[0], 0);
  EXPECT_EQ(tokens[255], 255);
  EXPECT_EQ(tokens[256], 'C');
  EXPECT_EQ(bytes.decode(tokens), text);
  EXPECT_EQ(bytes.vocab_size(), 256);
  EXPECT_THROW(bytes.decode({65, 256}), std::invalid_argument);
  EXPECT_THROW(bytes.decode({-1}), std::invalid_argument);
}

TEST(BpeTokenizer, TrainingIsDeterministic) {
  const std::string text = training_text();
  const BpeTokenizer first = BpeTokenizer::train(text, small_bpe());
  const BpeTokenizer second = BpeTokenizer::train(text, small_bpe());
  EXPECT_EQ(first.vocab_size(), 320);
  EXPECT_EQ(first.model_proto(), second.model_proto());
  EXPECT_EQ(first.fingerprint(), second.fingerprint());
  EXPECT_EQ(first.encode(text), second.encode(text));

  BpeOptions other = small_bpe();
  other.vocab_size = 300;
  EXPECT_NE(BpeTokenizer::train(text, other).fingerprint(), first.fingerprint());
}

TEST(BpeTokenizer, RoundTripsSeenAndUnseenText) {
  const BpeTokenizer bpe = BpeTokenizer::train(training_text(), small_bpe());
  const std::string seen = "the captain and the whale\nAhab was in the sea.\n";
  const auto tokens = bpe.encode(seen);
  EXPECT_LT(tokens.size(), seen.size() / 2) << "merges should compress known words";
  EXPECT_EQ(bpe.decode(tokens), seen);
  // Characters never seen in training go through the byte fallback.
  const std::string unseen = "  Zebra \xC3\xA9t\xC3\xA9 {42}\t~\n\n  indented\n";
  EXPECT_EQ(bpe.decode(bpe.encode(unseen)), unseen);
  for (const auto token : bpe.encode(unseen)) {
    EXPECT_GE(token, 0);
    EXPECT_LT(token, bpe.vocab_size());
  }
  EXPECT_THROW(bpe.decode({bpe.vocab_size()}), std::invalid_argument);
}

TEST(BpeTokenizer, BadOptionsAreRefused) {
  BpeOptions tiny = small_bpe();
  tiny.vocab_size = 100;
  KWM_EXPECT_THROW_WITH(BpeTokenizer::train(training_text(), tiny), std::invalid_argument,
                        "vocab_size must be at least");
  BpeOptions huge = small_bpe();
  huge.vocab_size = 50000;
  KWM_EXPECT_THROW_WITH(BpeTokenizer::train("a b\n", huge), std::invalid_argument,
                        "BPE training (vocab_size 50000) failed");
}

TEST(Tokenizer, SaveAndLoadKeepTheFingerprint) {
  ScratchDir dir;
  const BpeTokenizer bpe = BpeTokenizer::train(training_text(), small_bpe());
  bpe.save(dir.path());
  EXPECT_TRUE(std::filesystem::exists(dir / "tokenizer.model"));
  const auto loaded = load_tokenizer(dir.path());
  EXPECT_EQ(loaded->name(), "bpe");
  EXPECT_EQ(loaded->fingerprint(), bpe.fingerprint());
  const std::string text = "the harpoon of Ahab\n";
  EXPECT_EQ(loaded->encode(text), bpe.encode(text));

  ScratchDir byte_dir;
  ByteTokenizer().save(byte_dir.path());
  EXPECT_EQ(load_tokenizer(byte_dir.path())->fingerprint(), "byte-256");
}

TEST(Tokenizer, ASwappedModelFileIsDetected) {
  ScratchDir dir;
  BpeTokenizer::train(training_text(), small_bpe()).save(dir.path());
  BpeOptions other = small_bpe();
  other.vocab_size = 300;
  ScratchDir other_dir;
  BpeTokenizer::train(training_text(), other).save(other_dir.path());
  write_file(dir / "tokenizer.model", read_file(other_dir / "tokenizer.model"));
  KWM_EXPECT_THROW_WITH(load_tokenizer(dir.path()), std::invalid_argument,
                        "was made with tokenizer bpe-320-");
  KWM_EXPECT_THROW_WITH(load_tokenizer(dir / "nowhere"), std::runtime_error, "tokenizer.yaml");
  write_file(other_dir / "tokenizer.model", "not a model");
  KWM_EXPECT_THROW_WITH(load_tokenizer(other_dir.path()), std::invalid_argument,
                        "not a SentencePiece model");
}

}  // namespace
}  // namespace kwm::text
