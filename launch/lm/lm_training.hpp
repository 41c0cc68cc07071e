// kwm train for language models (model.type: gpt): data, tokenizer and shards, the learner, the
// token budget with periodic validation, checkpoints, and the run directory (config.yaml,
// metrics.jsonl, tokenizer, tokens/, model.h5). Under mpirun every rank takes its share of each
// batch; rank 0 logs and writes.
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "distributed/communicator.hpp"
#include "launch/json_result.hpp"

namespace kwm::launch {

struct LmTrainOptions {
  std::string config_path;
  YAML::Node document;  // the config with --set overrides applied
  std::string run_dir;  // --run-dir (overrides train.run_dir)
  bool resume = false;
  bool quiet = false;
  OutputMode output;
};

// Returns the process exit code. Throws UserError on bad input, before the run dir is touched.
int run_lm_train(const LmTrainOptions& options, Communicator& world);

}  // namespace kwm::launch
