// A language-model run's configuration (model.type: gpt): which books train, validate and test,
// the tokenizer, the GPT shape, the learner and the token budget. Checked key by key; mistakes are
// UserErrors naming the file and key.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/lm/gpt_config.hpp"

namespace kwm::launch {

struct LmDataConfig {
  YAML::Node corpus;               // data.corpus, read by text::parse_corpus_config (by book)
  std::string tokenizer = "byte";  // byte | bpe (SentencePiece, trained on the training split)
  int bpe_vocab_size = 1024;
};

struct LmTrainConfig {
  int batch = 8;                    // sequences per step, over all ranks
  int length = 0;                   // tokens per sequence; 0: the model's context
  std::int64_t tokens = 100000;     // training tokens (the budget), over all ranks
  std::int64_t eval_every = 0;      // steps between validation evaluations; 0: about 20 per run
  std::int64_t eval_tokens = 8192;  // validation tokens scored per evaluation (fixed windows)
  std::int64_t test_tokens = 0;     // test tokens scored after training (even windows); 0: all
  std::uint64_t seed = 1;           // model initialisation, learner randomness, batch order
  std::string sampling = "random";  // random windows (seeded) or sequential windows
  std::int64_t checkpoint_every = 0;
  int keep_last = 3;
  // The head bias at step 0: zero (the model's init) or unigram, the centred log add-one unigram
  // of the training split (lm::unigram_log_prior): the untrained model then predicts about the
  // unigram, and beating the unigram means learning context.
  std::string head_bias_init = "zero";
  // Where validation and the test split are scored: auto (the learner's device), cpu (core/lm in
  // fp64) or cuda (lm::cuda::GptForwardCuda in fp32, launch/lm/lm_device_scoring.hpp).
  std::string eval_device = "auto";
};

struct LmRunConfig {
  YAML::Node root;  // resolved document, written to <run-dir>/config.yaml
  LmDataConfig data;
  YAML::Node model;    // model: section (type: gpt plus GptConfig keys; vocab_size filled in)
  YAML::Node learner;  // learner: section, handed to make_language_learner (without `device`)
  // learner.device: cpu (the default; fp64 Eigen) or cuda (kwm-linearized in fp32 on one GPU,
  // core/lm/cuda/kwm_linearized_cuda_learner.hpp; needs a CUDA build and a device).
  std::string learner_device = "cpu";
  LmTrainConfig train;
  std::filesystem::path run_dir;
};

// True when the document's model.type is "gpt": kwm train / eval dispatch on it.
bool is_language_model_config(const YAML::Node& root);

// Validates every section except the learner's own keys (make_language_learner checks those)
// and the GPT keys (parse_gpt_config checks those once the tokenizer fixes vocab_size).
LmRunConfig parse_lm_run_config(YAML::Node root, const std::string& source);

// The GPT the config's model section describes, with the tokenizer's vocabulary (what kwm train
// and kwm tokens build); UserError naming `source` and the problem.
lm::GptConfig gpt_config_of(const LmRunConfig& config, int vocab_size, const std::string& source);

}  // namespace kwm::launch
