// BPE through SentencePiece.
#include "core/text/bpe_tokenizer.hpp"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <unordered_map>

#include "core/text/fnv1a.hpp"
#include "core/text/tokenizer_file.hpp"

namespace kwm::text {
namespace {

// The non-empty lines of a text, one SentencePiece training sentence each.
class LineIterator final : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(std::string_view text) : text_(text) { advance(); }
  bool done() const override { return done_; }
  void Next() override { advance(); }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void advance() {
    while (position_ < text_.size()) {
      std::size_t end = text_.find('\n', position_);
      if (end == std::string_view::npos) end = text_.size();
      line_.assign(text_.substr(position_, end - position_));
      position_ = end + 1;
      if (!line_.empty()) return;
    }
    done_ = true;
  }

  std::string_view text_;
  std::size_t position_ = 0;
  std::string line_;
  bool done_ = false;
};

// 256 byte pieces, <unk>, and room for at least a few characters and merges.
constexpr int kMinimumVocab = 260;

}  // namespace

BpeTokenizer::BpeTokenizer(std::string model_proto,
                           std::unique_ptr<sentencepiece::SentencePieceProcessor> processor)
    : model_proto_(std::move(model_proto)), processor_(std::move(processor)) {}
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

BpeTokenizer BpeTokenizer::train(std::string_view text, const BpeOptions& options) {
  if (options.vocab_size < kMinimumVocab) {
    throw std::invalid_argument("BPE vocab_size must be at least " + std::to_string(kMinimumVocab) +
                                " (256 byte pieces, <unk> and some merges); got " +
                                std::to_string(options.vocab_size));
  }
  if (options.max_piece_length < 1) {
    throw std::invalid_argument("BPE max_piece_length must be positive");
  }
  if (text.find_first_not_of("\n") == std::string_view::npos) {
    throw std::invalid_argument("BPE training text is empty");
  }
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"max_sentencepiece_length", std::to_string(options.max_piece_length)},
      // Determinism: one thread, every sentence in input order, no sampling.
      {"num_threads", "1"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      // Lossless: keep the text as it is and fall back to bytes for anything unseen.
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"byte_fallback", "true"},
      {"character_coverage", "1.0"},
      {"max_sentence_length", "1000000"},
      {"unk_id", "0"},
      {"bos_id", "-1"},
      {"eos_id", "-1"},
      {"pad_id", "-1"},
      {"minloglevel", "2"},
  };
  sentencepiece::SetRandomGeneratorSeed(options.seed);
  LineIterator lines(text);
  std::string model_proto;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &model_proto);
  if (!status.ok()) {
    throw std::invalid_argument("BPE training (vocab_size " + std::to_string(options.vocab_size) +
                                ") failed: " + status.ToString());
  }
  return from_model_proto(std::move(model_proto), "trained BPE model");
}

BpeTokenizer BpeTokenizer::from_model_proto(std::string model_proto, const std::string& source) {
  auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = processor->LoadFromSerializedProto(model_proto);
  if (!status.ok()) {
    throw std::invalid_argument(source + ": not a SentencePiece model: " + status.ToString());
  }
  return BpeTokenizer(std::move(model_proto), std::move(processor));
}

BpeTokenizer BpeTokenizer::from_model_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": BPE model file not found");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return from_model_proto(std::move(bytes).str(), path.string());
}

int BpeTokenizer::vocab_size() const { return processor_->GetPieceSize(); }

// Line by line: no piece holds a newline (training saw lines only), so this gives the same ids
// as encoding the whole text at once, and SentencePiece's BPE encoder grows faster than linearly
// with the length of its input (2x slower on 400 KB in one piece, measured).
std::vector<std::int32_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<std::int32_t> tokens;
  tokens.reserve(text.size() / 2);
  std::vector<int> ids;
  const auto append = [&](std::string_view piece) {
    const auto status = processor_->Encode(piece, &ids);
    if (!status.ok()) throw std::runtime_error("BPE encode failed: " + status.ToString());
    tokens.insert(tokens.end(), ids.begin(), ids.end());
  };
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t newline = text.find('\n', start);
    const std::size_t end = newline == std::string_view::npos ? text.size() : newline + 1;
    append(text.substr(start, end - start));
    start = end;
  }
  return tokens;
}

std::string BpeTokenizer::decode(const std::vector<std::int32_t>& tokens) const {
  const int vocab = vocab_size();
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab) {
      throw std::invalid_argument("BPE tokenizer: token " + std::to_string(tokens[i]) +
                                  " at position " + std::to_string(i) + " is outside [0, " +
                                  std::to_string(vocab) + ")");
    }
  }
  // SentencePiece takes std::vector<int>, which std::int32_t is here: no copy needed.
  static_assert(std::is_same_v<std::int32_t, int>);
  std::string text;
  const auto status = processor_->Decode(tokens, &text);
  if (!status.ok()) throw std::runtime_error("BPE decode failed: " + status.ToString());
  return text;
}

std::string BpeTokenizer::fingerprint() const {
  return "bpe-" + std::to_string(vocab_size()) + "-" + hex64(fnv1a64(model_proto_));
}

void BpeTokenizer::save(const std::filesystem::path& dir) const {
  write_file_atomically(dir / "tokenizer.model", model_proto_);
  write_tokenizer_yaml(dir, *this);
}

}  // namespace kwm::text
