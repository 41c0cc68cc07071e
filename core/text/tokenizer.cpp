// Loading a saved tokenizer and comparing fingerprints.
#include "core/text/tokenizer.hpp"

#include <yaml-cpp/yaml.h>

#include <stdexcept>

#include "core/text/bpe_tokenizer.hpp"
#include "core/text/byte_tokenizer.hpp"

namespace kwm::text {

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir) {
  const std::filesystem::path yaml_path = dir / "tokenizer.yaml";
  std::error_code error;
  if (!std::filesystem::is_regular_file(yaml_path, error)) {
    throw std::runtime_error(yaml_path.string() + ": tokenizer file not found");
  }
  YAML::Node yaml;
  std::string type;
  std::string recorded;
  try {
    yaml = YAML::LoadFile(yaml_path.string());
    type = yaml["type"].as<std::string>();
    recorded = yaml["fingerprint"].as<std::string>();
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument(yaml_path.string() + ": needs keys type and fingerprint (" +
                                e.what() + ")");
  }
  std::unique_ptr<Tokenizer> tokenizer;
  if (type == "byte") {
    tokenizer = std::make_unique<ByteTokenizer>();
  } else if (type == "bpe") {
    tokenizer =
        std::make_unique<BpeTokenizer>(BpeTokenizer::from_model_file(dir / "tokenizer.model"));
  } else {
    throw std::invalid_argument(yaml_path.string() + ": unknown tokenizer type '" + type +
                                "' (known: byte, bpe)");
  }
  check_fingerprint(*tokenizer, recorded, yaml_path.string());
  return tokenizer;
}

void check_fingerprint(const Tokenizer& tokenizer, const std::string& expected,
                       const std::string& what) {
  if (tokenizer.fingerprint() != expected) {
    throw std::invalid_argument(what + " was made with tokenizer " + expected +
                                " but the tokenizer in use is " + tokenizer.fingerprint());
  }
}

}  // namespace kwm::text
