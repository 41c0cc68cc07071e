// The BPE tokenizer: a SentencePiece BPE model trained on the training split. Byte fallback
// makes every text encodable; identity normalisation keeps the text as it is, so decode(encode(x))
// gives back x (the one exception: U+2581, SentencePiece's space symbol, decodes as a space).
#pragma once

#include <cstdint>
#include <memory>

#include "core/text/tokenizer.hpp"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace kwm::text {

struct BpeOptions {
  int vocab_size = 1024;  // includes <unk> and the 256 byte-fallback pieces
  std::uint32_t seed = 1;
  int max_piece_length = 16;  // bytes
};

class BpeTokenizer final : public Tokenizer {
 public:
  // Trains on the lines of `text` (newlines themselves become byte pieces), single-threaded with
  // a fixed seed, so the same text and options give the same model bytes. Throws
  // std::invalid_argument when vocab_size is below 260 or more than the text supports.
  static BpeTokenizer train(std::string_view text, const BpeOptions& options);
  // The serialized SentencePiece model (the bytes of a .model file); `source` names it in errors.
  static BpeTokenizer from_model_proto(std::string model_proto, const std::string& source);
  static BpeTokenizer from_model_file(const std::filesystem::path& path);

  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  ~BpeTokenizer() override;

  std::string name() const override { return "bpe"; }
  int vocab_size() const override;
  std::vector<std::int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<std::int32_t>& tokens) const override;
  // "bpe-<vocab>-<FNV-1a 64 of the model bytes>".
  std::string fingerprint() const override;
  // DIR/tokenizer.model (the SentencePiece model) and DIR/tokenizer.yaml.
  void save(const std::filesystem::path& dir) const override;

  const std::string& model_proto() const { return model_proto_; }

 private:
  BpeTokenizer(std::string model_proto,
               std::unique_ptr<sentencepiece::SentencePieceProcessor> processor);

  std::string model_proto_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace kwm::text
