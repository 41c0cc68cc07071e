// Corpus configs and splits by book: presets, parsing errors, parts cut at line starts, optional
// books, and no shared text between splits.
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include "core/text/corpus.hpp"
#include "tests/text/text_test_support.hpp"

namespace kwm::text {
namespace {

using testing::ScratchDir;
using testing::write_file;

const std::string kGutenbergBook =
    "Header licence text\n*** START OF THIS PROJECT GUTENBERG EBOOK A ***\n"
    "Alpha line one.\r\nAlpha line two.\r\n*** END OF THIS PROJECT GUTENBERG EBOOK A ***\nfooter\n";

TEST(CorpusConfig, NovelsPresetIsTheDefault) {
  const CorpusConfig config = parse_corpus_config(YAML::Node());
  ASSERT_EQ(config.train.size(), 3u);
  EXPECT_EQ(config.train[0].book, "mobydick");
  EXPECT_EQ(config.train[1].book, "huckfinn");
  EXPECT_EQ(config.train[2].book, "kjv");
  ASSERT_EQ(config.validation.size(), 1u);
  EXPECT_EQ(config.validation[0].book, "tomsawyer");
  ASSERT_EQ(config.test.size(), 1u);
  EXPECT_EQ(config.test[0].book, "sherlock");
  EXPECT_EQ(config.optional, std::vector<std::string>{"kjv"});
  EXPECT_EQ(config.dir, "data/text");
}

TEST(CorpusConfig, ExplicitSplitsOverrideThePreset) {
  const CorpusConfig config = parse_corpus_config(YAML::Load(
      "{preset: tiny, dir: /tmp/books, test: [{book: other, begin: 0.5}], optional: [other]}"));
  EXPECT_EQ(config.dir, "/tmp/books");
  ASSERT_EQ(config.train.size(), 1u);
  EXPECT_EQ(config.train[0].book, "literature");
  EXPECT_DOUBLE_EQ(config.train[0].end, 0.8);
  ASSERT_EQ(config.test.size(), 1u);
  EXPECT_EQ(config.test[0].book, "other");
  EXPECT_DOUBLE_EQ(config.test[0].begin, 0.5);
  EXPECT_DOUBLE_EQ(config.test[0].end, 1.0);
}

TEST(CorpusConfig, BadKeysAndOverlapsAreNamed) {
  KWM_EXPECT_THROW_WITH(parse_corpus_config(YAML::Load("{trian: [a]}")), std::invalid_argument,
                        "corpus.trian");
  KWM_EXPECT_THROW_WITH(parse_corpus_config(YAML::Load("{preset: huge}")), std::invalid_argument,
                        "corpus.preset");
  KWM_EXPECT_THROW_WITH(parse_corpus_config(YAML::Load("{train: [{book: a, end: 1.5}]}")),
                        std::invalid_argument, "corpus.train[0].end");
  KWM_EXPECT_THROW_WITH(parse_corpus_config(YAML::Load("{train: []}")), std::invalid_argument,
                        "corpus.train is empty");
  KWM_EXPECT_THROW_WITH(parse_corpus_config(YAML::Load("{train: [../etc/passwd]}")),
                        std::invalid_argument, "corpus.train[0]");
  KWM_EXPECT_THROW_WITH(parse_corpus_config(YAML::Load(
                            "{train: [{book: a, end: 0.6}], test: [{book: a, begin: 0.5}], "
                            "validation: []}")),
                        std::invalid_argument, "book 'a' is used twice");
  KWM_EXPECT_THROW_WITH(parse_corpus_config(YAML::Load("{train: [a], validation: [a], test: []}")),
                        std::invalid_argument, "book 'a' is used twice");
}

TEST(BookPart, PartsTileTheTextAtLineStarts) {
  const std::string text = "aaaa\nbbbb\ncccc\ndddd\neeee\n";
  const std::string first = book_part(text, 0.0, 0.3);
  const std::string middle = book_part(text, 0.3, 0.7);
  const std::string last = book_part(text, 0.7, 1.0);
  EXPECT_EQ(first + middle + last, text);
  // 0.3 * 25 = byte 7, inside "bbbb": the cut moves to the start of "cccc".
  EXPECT_EQ(first, "aaaa\nbbbb\n");
  EXPECT_EQ(middle, "cccc\ndddd\n");
  EXPECT_EQ(last, "eeee\n");
}

TEST(BuildCorpus, SplitsByBookWithCleaningAndOptionalBooks) {
  ScratchDir dir;
  write_file(dir / "alpha.txt", kGutenbergBook);
  write_file(dir / "beta.txt", "Beta has no markers.\n");
  write_file(dir / "gamma.xml", "<osis><verse/><w>Gamma</w> verse.<note>drop</note>\n</osis>\n");
  CorpusConfig config;
  config.dir = dir.path().string();
  config.train = {{"alpha", 0.0, 1.0}, {"missing", 0.0, 1.0}};
  config.validation = {{"beta", 0.0, 1.0}};
  config.test = {{"gamma", 0.0, 1.0}};
  config.optional = {"missing"};
  const CorpusSplits splits = build_corpus(config);
  EXPECT_EQ(splits.train, "Alpha line one.\nAlpha line two.\n");
  EXPECT_EQ(splits.validation, "Beta has no markers.\n");
  EXPECT_EQ(splits.test, "Gamma verse.\n");
  EXPECT_EQ(splits.skipped, std::vector<std::string>{"missing"});

  config.optional.clear();
  KWM_EXPECT_THROW_WITH(build_corpus(config), std::runtime_error, "missing.txt");
}

TEST(BuildCorpus, ABookWithNothingLeftIsNamed) {
  ScratchDir dir;
  write_file(dir / "hollow.txt",
             "licence\n*** START OF THIS PROJECT GUTENBERG EBOOK H ***\n\n*** END OF IT ***\n");
  CorpusConfig config;
  config.dir = dir.path().string();
  config.train = {{"hollow", 0.0, 1.0}};
  KWM_EXPECT_THROW_WITH(build_corpus(config), std::invalid_argument, "hollow.txt: no text left");
}

}  // namespace
}  // namespace kwm::text
