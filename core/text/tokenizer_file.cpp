// Tokenizer files.
#include "core/text/tokenizer_file.hpp"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <stdexcept>
#include <string>

#include "core/text/tokenizer.hpp"

namespace kwm::text {

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  const std::filesystem::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      throw std::runtime_error(path.string() + ": cannot write (does the folder exist?)");
    }
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      out.close();
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      throw std::runtime_error(path.string() + ": write failed (disk full?)");
    }
  }
  std::error_code error;
  std::filesystem::rename(tmp, path, error);
  if (error) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw std::runtime_error(path.string() +
                             ": cannot rename the temporary file over it: " + error.message());
  }
}

void write_tokenizer_yaml(const std::filesystem::path& dir, const Tokenizer& tokenizer) {
  YAML::Emitter yaml;
  yaml << YAML::BeginMap;
  yaml << YAML::Key << "type" << YAML::Value << tokenizer.name();
  yaml << YAML::Key << "vocab_size" << YAML::Value << tokenizer.vocab_size();
  yaml << YAML::Key << "fingerprint" << YAML::Value << tokenizer.fingerprint();
  yaml << YAML::EndMap;
  write_file_atomically(dir / "tokenizer.yaml", std::string(yaml.c_str()) + "\n");
}

}  // namespace kwm::text
