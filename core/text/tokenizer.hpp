// Tokenizer: text <-> token ids, with a fingerprint so a checkpoint or a token shard can tell
// that it was made with a different tokenizer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kwm::text {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // "byte" or "bpe".
  virtual std::string name() const = 0;
  virtual int vocab_size() const = 0;
  virtual std::vector<std::int32_t> encode(std::string_view text) const = 0;
  // Throws std::invalid_argument on an id outside [0, vocab_size).
  virtual std::string decode(const std::vector<std::int32_t>& tokens) const = 0;
  // Stable across processes and machines: equal fingerprints mean equal encodings.
  virtual std::string fingerprint() const = 0;
  // Writes DIR/tokenizer.yaml (type, vocab_size, fingerprint) and whatever the tokenizer needs
  // (BPE: DIR/tokenizer.model); the folder must exist. Files are written atomically.
  virtual void save(const std::filesystem::path& dir) const = 0;
};

// Reads what save() wrote. Throws std::runtime_error naming the file when it is missing, and
// std::invalid_argument naming it when the type is unknown or the recorded fingerprint does not
// match the loaded tokenizer (a model file swapped under the run).
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir);

// Throws std::invalid_argument naming `what` and both fingerprints when they differ.
void check_fingerprint(const Tokenizer& tokenizer, const std::string& expected,
                       const std::string& what);

}  // namespace kwm::text
