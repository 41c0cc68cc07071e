// Corpus splits by book.
#include "core/text/corpus.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <utility>

#include "core/text/gutenberg.hpp"
#include "core/text/osis.hpp"
#include "core/text/text_file.hpp"

namespace kwm::text {
namespace {

std::vector<BookPart> whole(std::initializer_list<const char*> books) {
  std::vector<BookPart> parts;
  for (const char* book : books) parts.push_back({book, 0.0, 1.0});
  return parts;
}

double fraction(const YAML::Node& node, const std::string& key) {
  double value = 0.0;
  try {
    value = node.as<double>();
  } catch (const YAML::Exception&) {
    throw std::invalid_argument("config key " + key + " must be a number in [0, 1]");
  }
  if (!(value >= 0.0 && value <= 1.0)) {
    throw std::invalid_argument("config key " + key + " must be in [0, 1]; got " +
                                std::to_string(value));
  }
  return value;
}

std::vector<BookPart> parse_split(const YAML::Node& node, const std::string& key) {
  if (!node.IsSequence()) {
    throw std::invalid_argument("config key " + key + " must be a list of books");
  }
  std::vector<BookPart> parts;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const std::string item_key = key + "[" + std::to_string(i) + "]";
    const YAML::Node item = node[i];
    BookPart part;
    if (item.IsScalar()) {
      part.book = item.as<std::string>();
    } else if (item.IsMap()) {
      for (const auto& entry : item) {
        const auto name = entry.first.as<std::string>();
        if (name != "book" && name != "begin" && name != "end") {
          throw std::invalid_argument("unknown config key " + item_key + "." + name +
                                      " (known: book, begin, end)");
        }
      }
      if (!item["book"]) throw std::invalid_argument("config key " + item_key + ".book is missing");
      part.book = item["book"].as<std::string>();
      if (item["begin"]) part.begin = fraction(item["begin"], item_key + ".begin");
      if (item["end"]) part.end = fraction(item["end"], item_key + ".end");
      if (part.begin >= part.end) {
        throw std::invalid_argument("config key " + item_key + ": begin must be below end");
      }
    } else {
      throw std::invalid_argument("config key " + item_key + " must be a book name or a map");
    }
    if (part.book.empty() || part.book.find('/') != std::string::npos) {
      throw std::invalid_argument("config key " + item_key +
                                  " must be a book name (a file stem under dir), got '" +
                                  part.book + "'");
    }
    parts.push_back(part);
  }
  return parts;
}

// Two parts of one book in any splits must not overlap: the splits would share text.
void check_disjoint(const CorpusConfig& config) {
  std::map<std::string, std::vector<std::pair<BookPart, std::string>>> by_book;
  for (const auto& [split, parts] :
       {std::pair{"train", &config.train}, std::pair{"validation", &config.validation},
        std::pair{"test", &config.test}}) {
    for (const BookPart& part : *parts) by_book[part.book].emplace_back(part, split);
  }
  for (auto& [book, parts] : by_book) {
    std::sort(parts.begin(), parts.end(),
              [](const auto& a, const auto& b) { return a.first.begin < b.first.begin; });
    for (std::size_t i = 1; i < parts.size(); ++i) {
      if (parts[i].first.begin < parts[i - 1].first.end) {
        throw std::invalid_argument("corpus: book '" + book + "' is used twice with overlap (" +
                                    parts[i - 1].second + " and " + parts[i].second +
                                    "); the splits must not share text");
      }
    }
  }
}

std::size_t next_line_start(const std::string& text, double fraction_of_text) {
  const auto at = static_cast<std::size_t>(fraction_of_text * static_cast<double>(text.size()));
  if (at == 0) return 0;
  if (at >= text.size()) return text.size();
  if (text[at - 1] == '\n') return at;
  const std::size_t newline = text.find('\n', at);
  return newline == std::string::npos ? text.size() : newline + 1;
}

}  // namespace

CorpusConfig corpus_preset(const std::string& name) {
  CorpusConfig config;
  if (name == "novels") {
    config.train = whole({"mobydick", "huckfinn", "kjv"});
    config.validation = whole({"tomsawyer"});
    config.test = whole({"sherlock"});
    config.optional = {"kjv"};
  } else if (name == "tiny") {
    config.train = {{"literature", 0.0, 0.8}};
    config.validation = {{"literature", 0.8, 0.9}};
    config.test = {{"literature", 0.9, 1.0}};
  } else {
    throw std::invalid_argument("config key corpus.preset must be novels or tiny; got '" + name +
                                "'");
  }
  return config;
}

CorpusConfig parse_corpus_config(const YAML::Node& corpus) {
  if (!corpus || corpus.IsNull()) return corpus_preset("novels");
  if (!corpus.IsMap()) throw std::invalid_argument("config key corpus must be a map");
  for (const auto& entry : corpus) {
    const auto key = entry.first.as<std::string>();
    static const char* const known[] = {"dir", "preset", "train", "validation", "test", "optional"};
    if (std::find(std::begin(known), std::end(known), key) == std::end(known)) {
      throw std::invalid_argument("unknown config key corpus." + key +
                                  " (known: dir, preset, train, validation, test, optional)");
    }
  }
  CorpusConfig config =
      corpus_preset(corpus["preset"] ? corpus["preset"].as<std::string>() : "novels");
  if (corpus["dir"]) config.dir = corpus["dir"].as<std::string>();
  if (corpus["train"]) config.train = parse_split(corpus["train"], "corpus.train");
  if (corpus["validation"]) {
    config.validation = parse_split(corpus["validation"], "corpus.validation");
  }
  if (corpus["test"]) config.test = parse_split(corpus["test"], "corpus.test");
  if (corpus["optional"]) {
    if (!corpus["optional"].IsSequence()) {
      throw std::invalid_argument("config key corpus.optional must be a list of book names");
    }
    config.optional = corpus["optional"].as<std::vector<std::string>>();
  }
  if (config.train.empty()) throw std::invalid_argument("config key corpus.train is empty");
  check_disjoint(config);
  return config;
}

std::filesystem::path find_book(const std::string& dir, const std::string& book) {
  const std::filesystem::path txt = std::filesystem::path(dir) / (book + ".txt");
  const std::filesystem::path xml = std::filesystem::path(dir) / (book + ".xml");
  std::error_code error;
  if (std::filesystem::is_regular_file(txt, error)) return txt;
  if (std::filesystem::is_regular_file(xml, error)) return xml;
  throw std::runtime_error("corpus book '" + book + "': neither " + txt.string() + " nor " +
                           xml.string() +
                           " exists (launch/fetch_data.sh --set text, or --set kjv for the KJV)");
}

std::string prepare_book(const std::filesystem::path& path) {
  const std::string text = normalise_line_endings(read_text_file(path));
  std::string clean =
      path.extension() == ".xml" ? osis_to_text(text, path.string()) : strip_gutenberg(text);
  if (clean.find_first_not_of(" \t\n") == std::string::npos) {
    throw std::invalid_argument(path.string() + ": no text left after stripping the markup");
  }
  return clean;
}

std::string book_part(const std::string& text, double begin, double end) {
  const std::size_t from = next_line_start(text, begin);
  const std::size_t to = next_line_start(text, end);
  return text.substr(from, to > from ? to - from : 0);
}

CorpusSplits build_corpus(const CorpusConfig& config) {
  CorpusSplits splits;
  std::map<std::string, std::string> books;  // cleaned once even when split into parts
  const auto is_optional = [&](const std::string& book) {
    return std::find(config.optional.begin(), config.optional.end(), book) != config.optional.end();
  };
  const auto assemble = [&](const std::vector<BookPart>& parts, std::string& out) {
    for (const BookPart& part : parts) {
      auto found = books.find(part.book);
      if (found == books.end()) {
        std::filesystem::path path;
        try {
          path = find_book(config.dir, part.book);
        } catch (const std::runtime_error&) {
          if (!is_optional(part.book)) throw;
          if (std::find(splits.skipped.begin(), splits.skipped.end(), part.book) ==
              splits.skipped.end()) {
            splits.skipped.push_back(part.book);
          }
          continue;
        }
        found = books.emplace(part.book, prepare_book(path)).first;
      }
      if (!out.empty()) out.push_back('\n');
      out += book_part(found->second, part.begin, part.end);
    }
  };
  assemble(config.train, splits.train);
  assemble(config.validation, splits.validation);
  assemble(config.test, splits.test);
  if (splits.train.empty()) {
    throw std::invalid_argument("corpus in " + config.dir + ": the train split has no text");
  }
  return splits;
}

}  // namespace kwm::text
