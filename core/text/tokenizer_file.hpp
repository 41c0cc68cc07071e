// The files a tokenizer leaves in a run folder: tokenizer.yaml, written atomically.
#pragma once

#include <filesystem>
#include <string_view>

namespace kwm::text {

class Tokenizer;

// DIR/tokenizer.yaml: type, vocab_size, fingerprint.
void write_tokenizer_yaml(const std::filesystem::path& dir, const Tokenizer& tokenizer);

// Writes PATH.tmp.<pid> then renames it over PATH, so a reader sees the old file or the whole
// new one. Throws std::runtime_error naming the path (the temporary file is removed).
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);

}  // namespace kwm::text
