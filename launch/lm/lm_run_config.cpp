// Language-model run config: sections and key checks with messages naming the key.
#include "launch/lm/lm_run_config.hpp"

#include <set>

#include "launch/config_keys.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {
namespace {

void positive(std::int64_t value, const std::string& source, const std::string& key) {
  if (value <= 0)
    fail_config(source, "key '" + key + "' must be positive; got " + std::to_string(value));
}

}  // namespace

bool is_language_model_config(const YAML::Node& root) {
  if (!root || !root.IsMap() || !root["model"] || !root["model"].IsMap()) return false;
  const YAML::Node type = root["model"]["type"];
  return type && type.IsScalar() && type.Scalar() == "gpt";
}

LmRunConfig parse_lm_run_config(YAML::Node root, const std::string& source) {
  if (!root || !root.IsMap())
    fail_config(source, "expected a mapping with data, model, learner, train");
  check_config_keys(root, source, "", {"data", "model", "learner", "train", "distributed"});
  for (const char* section : {"data", "model", "learner"})
    if (!root[section]) fail_config(source, std::string("missing section '") + section + "'");

  LmRunConfig c;
  c.root = root;
  const YAML::Node data = root["data"];
  check_config_keys(data, source, "data", {"corpus", "tokenizer"});
  c.data.corpus = data["corpus"] ? data["corpus"] : YAML::Node(YAML::NodeType::Map);
  if (const YAML::Node tok = data["tokenizer"]) {
    check_config_keys(tok, source, "data.tokenizer", {"type", "vocab_size"});
    c.data.tokenizer = read_config<std::string>(tok, "type", source, "data.tokenizer", "byte");
    c.data.bpe_vocab_size = read_config<int>(tok, "vocab_size", source, "data.tokenizer", 1024);
    if (c.data.tokenizer != "byte" && c.data.tokenizer != "bpe")
      fail_config(source,
                  "key 'data.tokenizer.type' must be byte or bpe; got '" + c.data.tokenizer + "'");
    if (c.data.tokenizer == "byte" && tok["vocab_size"])
      fail_config(source, "key 'data.tokenizer.vocab_size' applies to bpe only (byte is 256)");
    if (c.data.bpe_vocab_size < 260 || c.data.bpe_vocab_size > 65536)
      fail_config(source, "key 'data.tokenizer.vocab_size' must be in [260, 65536]");
  }

  c.model = root["model"];
  if (c.model["vocab_size"])
    fail_config(source, "key 'model.vocab_size' comes from the tokenizer; leave it out");
  c.learner = root["learner"];
  if (!c.learner.IsMap() || !c.learner["type"])
    fail_config(source,
                "key 'learner.type' is required (rls-head, kwm-linearized, kwm-ensemble, "
                "adamw, mezo)");
  if (c.learner["device"]) {  // read here; the learner's own keys never include it
    c.learner_device = read_config<std::string>(c.learner, "device", source, "learner", "cpu");
    if (c.learner_device != "cpu" && c.learner_device != "cuda")
      fail_config(source,
                  "key 'learner.device' must be cpu or cuda; got '" + c.learner_device + "'");
    c.learner = YAML::Clone(c.learner);  // root (written to config.yaml) keeps the key
    c.learner.remove("device");
  }
  // fp32 | tf32 for the GPU learner's pass GEMMs (tensor_math), and also bf16 for its statistics
  // GEMMs (statistics_math), read there (kwm_linearized_cuda_learner.hpp); the CPU learners run
  // in fp64 and take neither key.
  for (const char* key : {"tensor_math", "statistics_math"}) {
    if (!c.learner[key] || c.learner_device == "cuda") continue;
    const std::string name = std::string("learner.") + key;
    const auto math = read_config<std::string>(c.learner, key, source, "learner", "fp32");
    const bool statistics = std::string(key) == "statistics_math";
    if (math != "fp32" && math != "tf32" && !(statistics && math == "bf16"))
      fail_config(source, "key '" + name + "' must be fp32 or tf32" +
                              (statistics ? std::string(" or bf16") : std::string()) + "; got '" +
                              math + "'");
    if (math != "fp32")
      fail_config(source, "key '" + name + "' " + math +
                              " needs learner.device: cuda (the CPU learners run in fp64)");
    c.learner = YAML::Clone(c.learner);
    c.learner.remove(key);
  }

  const YAML::Node train = root["train"];
  check_config_keys(
      train, source, "train",
      {"run_dir", "batch", "length", "tokens", "eval_every", "eval_tokens", "seed", "sampling",
       "checkpoint_every", "keep_last", "head_bias_init", "test_tokens", "eval_device"});
  LmTrainConfig& t = c.train;
  t.batch = read_config<int>(train, "batch", source, "train", t.batch);
  t.length = read_config<int>(train, "length", source, "train", t.length);
  t.tokens = read_config<std::int64_t>(train, "tokens", source, "train", t.tokens);
  t.eval_every = read_config<std::int64_t>(train, "eval_every", source, "train", t.eval_every);
  t.eval_tokens = read_config<std::int64_t>(train, "eval_tokens", source, "train", t.eval_tokens);
  t.test_tokens = read_config<std::int64_t>(train, "test_tokens", source, "train", t.test_tokens);
  if (t.test_tokens < 0)
    fail_config(source, "key 'train.test_tokens' must be >= 0 (0: the whole test split)");
  t.seed = read_config<std::uint64_t>(train, "seed", source, "train", t.seed);
  t.sampling = read_config<std::string>(train, "sampling", source, "train", t.sampling);
  t.checkpoint_every =
      read_config<std::int64_t>(train, "checkpoint_every", source, "train", t.checkpoint_every);
  t.keep_last = read_config<int>(train, "keep_last", source, "train", t.keep_last);
  t.head_bias_init =
      read_config<std::string>(train, "head_bias_init", source, "train", t.head_bias_init);
  if (t.head_bias_init != "zero" && t.head_bias_init != "unigram")
    fail_config(source, "key 'train.head_bias_init' must be zero or unigram; got '" +
                            t.head_bias_init + "'");
  t.eval_device = read_config<std::string>(train, "eval_device", source, "train", t.eval_device);
  if (t.eval_device != "auto" && t.eval_device != "cpu" && t.eval_device != "cuda")
    fail_config(source,
                "key 'train.eval_device' must be auto (the learner's device), cpu or cuda; "
                "got '" +
                    t.eval_device + "'");
  positive(t.batch, source, "train.batch");
  positive(t.tokens, source, "train.tokens");
  positive(t.eval_tokens, source, "train.eval_tokens");
  if (t.length < 0) fail_config(source, "key 'train.length' must be >= 0 (0: the model's context)");
  if (t.eval_every < 0 || t.checkpoint_every < 0 || t.keep_last < 0)
    fail_config(source,
                "keys 'train.eval_every', 'train.checkpoint_every', 'train.keep_last' must be "
                ">= 0");
  if (t.sampling != "random" && t.sampling != "sequential")
    fail_config(source,
                "key 'train.sampling' must be random or sequential; got '" + t.sampling + "'");
  c.run_dir = read_config<std::string>(train, "run_dir", source, "train", "runs/lm");

  if (const YAML::Node dist = root["distributed"]) {
    check_config_keys(dist, source, "distributed", {"mode"});
    const auto mode =
        read_config<std::string>(dist, "mode", source, "distributed", "data_parallel");
    if (mode != "data_parallel")
      fail_config(source,
                  "key 'distributed.mode': language models run data_parallel (each rank a "
                  "share of every batch, factor blocks owned by ranks); got '" +
                      mode + "'");
  }
  return c;
}

lm::GptConfig gpt_config_of(const LmRunConfig& config, int vocab_size, const std::string& source) {
  YAML::Node model = YAML::Clone(config.model);
  model.remove("type");
  model["vocab_size"] = vocab_size;
  try {
    return lm::parse_gpt_config(model);
  } catch (const std::invalid_argument& e) {
    throw UserError(source + ": model: " + e.what());
  }
}

}  // namespace kwm::launch
