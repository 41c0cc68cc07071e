// The text corpus: which books (or contiguous parts of books) make the train, validation and
// test splits, and the cleaned text of each split. Splits are by book, never by random lines.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace YAML {
class Node;
}

namespace kwm::text {

// A contiguous part of a book: the bytes from `begin` to `end` (fractions of its cleaned text),
// both cut at the next line start so no line is split between two parts.
struct BookPart {
  std::string book;  // file stem under CorpusConfig::dir: <book>.txt or <book>.xml
  double begin = 0.0;
  double end = 1.0;
};

struct CorpusConfig {
  std::string dir = "data/text";
  std::vector<BookPart> train;
  std::vector<BookPart> validation;
  std::vector<BookPart> test;
  std::vector<std::string> optional;  // books skipped (and reported) when their file is missing
};

// Preset "novels" (the default): train = Moby Dick + Huckleberry Finn + KJV (optional),
// validation = Tom Sawyer, test = Sherlock Holmes. Preset "tiny": the fortunes literature file,
// its first 80% of lines for train, the next 10% validation, the last 10% test.
CorpusConfig corpus_preset(const std::string& name);

// Keys: dir, preset, train, validation, test, optional. A split is a list of book names or
// {book, begin, end} maps; a preset fills the splits, explicit keys override it. Throws
// std::invalid_argument naming the key on an unknown key, a bad fraction, an empty train split
// or two overlapping parts of one book.
CorpusConfig parse_corpus_config(const YAML::Node& corpus);

// <dir>/<book>.txt or <dir>/<book>.xml; throws std::runtime_error naming both when neither exists.
std::filesystem::path find_book(const std::string& dir, const std::string& book);

// The cleaned text of one file: read and vetted (read_text_file), line endings normalised, then
// OSIS tags stripped for .xml, the Gutenberg header/footer stripped otherwise. Throws naming the
// file when nothing is left.
std::string prepare_book(const std::filesystem::path& path);

// The slice [begin, end) of `text`, both fractions moved forward to the next line start.
std::string book_part(const std::string& text, double begin, double end);

struct CorpusSplits {
  std::string train;
  std::string validation;
  std::string test;
  std::vector<std::string> skipped;  // optional books whose file was missing
};

// Books joined in config order, separated by a blank line.
CorpusSplits build_corpus(const CorpusConfig& config);

}  // namespace kwm::text
