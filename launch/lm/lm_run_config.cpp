// Language-model run config: sections and key checks with messages naming the key.
#include "launch/lm/lm_run_config.hpp"

#include <set>

#include "launch/user_error.hpp"

namespace kwm::launch {
namespace {

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw UserError(source + ": " + what);
}

void check_keys(const YAML::Node& node, const std::string& source, const std::string& prefix,
                const std::set<std::string>& allowed) {
  if (!node) return;
  if (!node.IsMap()) fail(source, "key '" + prefix + "' must be a mapping");
  for (const auto& entry : node) {
    const auto key = entry.first.as<std::string>();
    if (allowed.contains(key)) continue;
    std::string known;
    for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
    fail(source, "unknown key '" + (prefix.empty() ? "" : prefix + ".") + key +
                     "'; expected one of: " + known);
  }
}

template <typename V>
V read(const YAML::Node& node, const std::string& key, const std::string& source,
       const std::string& prefix, V fallback) {
  if (!node || !node[key]) return fallback;
  try {
    return node[key].as<V>();
  } catch (const YAML::Exception&) {
    fail(source, "key '" + prefix + "." + key + "' has the wrong type; got '" +
                     YAML::Dump(node[key]) + "'");
  }
}

void positive(std::int64_t value, const std::string& source, const std::string& key) {
  if (value <= 0) fail(source, "key '" + key + "' must be positive; got " + std::to_string(value));
}

}  // namespace

bool is_language_model_config(const YAML::Node& root) {
  if (!root || !root.IsMap() || !root["model"] || !root["model"].IsMap()) return false;
  const YAML::Node type = root["model"]["type"];
  return type && type.IsScalar() && type.Scalar() == "gpt";
}

LmRunConfig parse_lm_run_config(YAML::Node root, const std::string& source) {
  if (!root || !root.IsMap()) fail(source, "expected a mapping with data, model, learner, train");
  check_keys(root, source, "", {"data", "model", "learner", "train", "distributed"});
  for (const char* section : {"data", "model", "learner"})
    if (!root[section]) fail(source, std::string("missing section '") + section + "'");

  LmRunConfig c;
  c.root = root;
  const YAML::Node data = root["data"];
  check_keys(data, source, "data", {"corpus", "tokenizer"});
  c.data.corpus = data["corpus"] ? data["corpus"] : YAML::Node(YAML::NodeType::Map);
  if (const YAML::Node tok = data["tokenizer"]) {
    check_keys(tok, source, "data.tokenizer", {"type", "vocab_size"});
    c.data.tokenizer = read<std::string>(tok, "type", source, "data.tokenizer", "byte");
    c.data.bpe_vocab_size = read<int>(tok, "vocab_size", source, "data.tokenizer", 1024);
    if (c.data.tokenizer != "byte" && c.data.tokenizer != "bpe")
      fail(source, "key 'data.tokenizer.type' must be byte or bpe; got '" + c.data.tokenizer + "'");
    if (c.data.tokenizer == "byte" && tok["vocab_size"])
      fail(source, "key 'data.tokenizer.vocab_size' applies to bpe only (byte is 256)");
    if (c.data.bpe_vocab_size < 260 || c.data.bpe_vocab_size > 65536)
      fail(source, "key 'data.tokenizer.vocab_size' must be in [260, 65536]");
  }

  c.model = root["model"];
  if (c.model["vocab_size"])
    fail(source, "key 'model.vocab_size' comes from the tokenizer; leave it out");
  c.learner = root["learner"];
  if (!c.learner.IsMap() || !c.learner["type"])
    fail(source,
         "key 'learner.type' is required (rls-head, kwm-linearized, kwm-ensemble, "
         "adamw, mezo)");

  const YAML::Node train = root["train"];
  check_keys(train, source, "train",
             {"run_dir", "batch", "length", "tokens", "eval_every", "eval_tokens", "seed",
              "sampling", "checkpoint_every", "keep_last"});
  LmTrainConfig& t = c.train;
  t.batch = read<int>(train, "batch", source, "train", t.batch);
  t.length = read<int>(train, "length", source, "train", t.length);
  t.tokens = read<std::int64_t>(train, "tokens", source, "train", t.tokens);
  t.eval_every = read<std::int64_t>(train, "eval_every", source, "train", t.eval_every);
  t.eval_tokens = read<std::int64_t>(train, "eval_tokens", source, "train", t.eval_tokens);
  t.seed = read<std::uint64_t>(train, "seed", source, "train", t.seed);
  t.sampling = read<std::string>(train, "sampling", source, "train", t.sampling);
  t.checkpoint_every =
      read<std::int64_t>(train, "checkpoint_every", source, "train", t.checkpoint_every);
  t.keep_last = read<int>(train, "keep_last", source, "train", t.keep_last);
  positive(t.batch, source, "train.batch");
  positive(t.tokens, source, "train.tokens");
  positive(t.eval_tokens, source, "train.eval_tokens");
  if (t.length < 0) fail(source, "key 'train.length' must be >= 0 (0: the model's context)");
  if (t.eval_every < 0 || t.checkpoint_every < 0 || t.keep_last < 0)
    fail(source,
         "keys 'train.eval_every', 'train.checkpoint_every', 'train.keep_last' must be "
         ">= 0");
  if (t.sampling != "random" && t.sampling != "sequential")
    fail(source, "key 'train.sampling' must be random or sequential; got '" + t.sampling + "'");
  c.run_dir = read<std::string>(train, "run_dir", source, "train", "runs/lm");

  if (const YAML::Node dist = root["distributed"]) {
    check_keys(dist, source, "distributed", {"mode"});
    const auto mode = read<std::string>(dist, "mode", source, "distributed", "data_parallel");
    if (mode != "data_parallel")
      fail(source,
           "key 'distributed.mode': language models run data_parallel (each rank a "
           "share of every batch, factor blocks owned by ranks); got '" +
               mode + "'");
  }
  return c;
}

}  // namespace kwm::launch
