// The fetched corpus (launch/fetch_data.sh; CI runs it first). Each test skips, saying why, when
// the files it needs are not in data/text.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/text/bpe_tokenizer.hpp"
#include "core/text/byte_tokenizer.hpp"
#include "core/text/corpus.hpp"
#include "core/text/token_loader.hpp"
#include "core/text/token_shard.hpp"
#include "tests/text/text_test_support.hpp"

namespace kwm::text {
namespace {

// $KWM_DATA_DIR/text, else the repository's data/text (as the other data-file tests do).
std::string text_dir() {
  if (const char* env = std::getenv("KWM_DATA_DIR"); env != nullptr && *env != '\0') {
    return std::string(env) + "/text";
  }
  return std::string(KWM_SOURCE_DIR) + "/data/text";
}

bool have(const std::string& book, const std::string& extension = ".txt") {
  return std::filesystem::exists(text_dir() + "/" + book + extension);
}

#define KWM_REQUIRE_BOOK(book, extension)                                                          \
  if (!have(book, extension)) {                                                                    \
    GTEST_SKIP() << text_dir() << "/" << book << extension << " not fetched (launch/fetch_data.sh" \
                 << (std::string(extension) == ".xml" ? " --set kjv)" : ")");                      \
  }

TEST(FetchedCorpus, NovelsLoseTheirGutenbergBoilerplate) {
  for (const char* book : {"mobydick", "sherlock", "tomsawyer", "huckfinn"}) {
    KWM_REQUIRE_BOOK(book, ".txt");
  }
  const std::string moby = prepare_book(text_dir() + "/mobydick.txt");
  // The licence before START and after END is gone (a transcriber's note inside stays).
  EXPECT_EQ(moby.find("*** START OF"), std::string::npos);
  EXPECT_EQ(moby.find("General Terms of Use"), std::string::npos);
  EXPECT_EQ(moby.rfind("Produced by Daniel Lazarus", 0), 0u);
  EXPECT_NE(moby.find("Call me Ishmael."), std::string::npos);
  EXPECT_EQ(moby.find('\r'), std::string::npos);
  const std::string sherlock = prepare_book(text_dir() + "/sherlock.txt");
  EXPECT_EQ(sherlock.find("*** END OF"), std::string::npos);
  EXPECT_EQ(sherlock.find("General Terms of Use"), std::string::npos);
  EXPECT_NE(sherlock.find("To Sherlock Holmes she is always THE woman."), std::string::npos);
  // Huckleberry Finn and Tom Sawyer carry no markers: kept whole.
  EXPECT_NE(prepare_book(text_dir() + "/huckfinn.txt").find("YOU don't know about me"),
            std::string::npos);
  EXPECT_NE(prepare_book(text_dir() + "/tomsawyer.txt").find("\"TOM!\""), std::string::npos);
}

TEST(FetchedCorpus, TinyPresetSplitsTheLiteratureFileIntoDisjointParts) {
  KWM_REQUIRE_BOOK("literature", ".txt");
  CorpusConfig config = corpus_preset("tiny");
  config.dir = text_dir();
  const CorpusSplits splits = build_corpus(config);
  const std::string whole = prepare_book(text_dir() + "/literature.txt");
  EXPECT_EQ(splits.train + splits.validation + splits.test, whole);
  EXPECT_NEAR(static_cast<double>(splits.train.size()) / static_cast<double>(whole.size()), 0.8,
              0.01);
  EXPECT_GT(splits.validation.size(), 4000u);
  EXPECT_GT(splits.test.size(), 4000u);
}

TEST(FetchedCorpus, TinyCorpusThroughBpeShardAndLoader) {
  KWM_REQUIRE_BOOK("literature", ".txt");
  CorpusConfig config = corpus_preset("tiny");
  config.dir = text_dir();
  const CorpusSplits splits = build_corpus(config);
  BpeOptions bpe_options;
  bpe_options.vocab_size = 512;
  const BpeTokenizer bpe = BpeTokenizer::train(splits.train, bpe_options);
  const auto validation = bpe.encode(splits.validation);
  EXPECT_EQ(bpe.decode(validation), splits.validation);
  const double bytes_per_token =
      static_cast<double>(splits.validation.size()) / static_cast<double>(validation.size());
  EXPECT_GT(bytes_per_token, 1.5) << "BPE should compress unseen text of the same kind";

  testing::ScratchDir dir;
  write_token_shard(dir / "validation.tok", validation, bpe.vocab_size(), bpe.fingerprint());
  const TokenShard shard = read_token_shard(dir / "validation.tok");
  EXPECT_EQ(shard.fingerprint, bpe.fingerprint());
  LoaderOptions options;
  options.batch = 4;
  options.length = 32;
  TokenLoader loader(shard.tokens, options, (dir / "validation.tok").string());
  const lm::TokenBatch batch = loader.next();
  EXPECT_EQ(batch.inputs.size(), 128u);
}

TEST(FetchedCorpus, KjvBecomesOneVersePerLine) {
  KWM_REQUIRE_BOOK("kjv", ".xml");
  const std::string kjv = prepare_book(text_dir() + "/kjv.xml");
  EXPECT_EQ(kjv.rfind("THE FIRST BOOK OF MOSES CALLED GENESIS\n", 0), 0u);
  EXPECT_NE(kjv.find("\nIn the beginning God created the heaven and the earth.\n"),
            std::string::npos);
  EXPECT_EQ(kjv.find('<'), std::string::npos);
  EXPECT_EQ(kjv.find("Heb."), std::string::npos) << "translators' notes must be dropped";
  EXPECT_GT(kjv.size(), 4'000'000u);
  EXPECT_LT(kjv.size(), 5'000'000u);
}

}  // namespace
}  // namespace kwm::text
