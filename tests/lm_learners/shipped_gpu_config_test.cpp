// The shipped GPU language-model configs (configs/lm_gpu_*.yaml) as kwm train reads them, on the
// CPU: the launcher's parser accepts every key, the model section builds a GPT of the parameter
// count the config's comment states (vocab_size from the BPE tokenizer section), the fp32 model
// of that shape is allocated, and the learner section is accepted by the learner factory (with
// learner.device: cpu, on a shrunken model: the full-size CPU learner would hold gigabytes).
// Nothing is trained.
#include <gtest/gtest.h>

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/lm/gpt_config.hpp"
#include "core/lm/gpt_parameters.hpp"
#include "core/lm/learners/learner_factory.hpp"
#include "launch/lm/lm_run_config.hpp"

namespace kwm::launch {
namespace {

struct ShippedGpuConfig {
  const char* file;
  std::int64_t parameters;  // as stated in the config's first comment lines
  int vocab_size;
  int context;
  int batch;
};

lm::GptConfig gpt_of(const LmRunConfig& config) {
  YAML::Node model = YAML::Clone(config.model);
  model.remove("type");
  model["vocab_size"] = config.data.bpe_vocab_size;
  return lm::parse_gpt_config(model);
}

void check_shipped(const ShippedGpuConfig& shipped) {
  const auto path = std::filesystem::path(KWM_SOURCE_DIR) / "configs" / shipped.file;
  const YAML::Node root = YAML::LoadFile(path.string());
  const LmRunConfig config = parse_lm_run_config(YAML::Clone(root), path.string());
  EXPECT_EQ(config.learner_device, "cuda") << shipped.file;
  EXPECT_EQ(config.train.eval_device, "auto") << shipped.file;  // scored on the learner's GPU
  EXPECT_EQ(config.data.tokenizer, "bpe") << shipped.file;
  EXPECT_EQ(config.data.bpe_vocab_size, shipped.vocab_size) << shipped.file;
  EXPECT_EQ(config.train.batch, shipped.batch) << shipped.file;
  EXPECT_EQ(config.train.length, 0) << shipped.file;  // the whole context per sequence

  const lm::GptConfig gpt = gpt_of(config);
  EXPECT_EQ(gpt.context, shipped.context) << shipped.file;
  EXPECT_FALSE(gpt.tied_head) << shipped.file;  // the GPU learner refuses a tied head
  EXPECT_TRUE(gpt.head_bias) << shipped.file;
  EXPECT_EQ(lm::parameter_count(gpt), shipped.parameters) << shipped.file;
  {
    const auto model = lm::GptParameters<float>::zeros(gpt);  // what the GPU learner uploads
    EXPECT_EQ(model.size(), shipped.parameters) << shipped.file;
    EXPECT_EQ(model.head.weight.rows(), shipped.vocab_size) << shipped.file;
  }

  // The learner keys, as `--set learner.device=cpu` runs them.
  YAML::Node on_cpu = YAML::Clone(root);
  on_cpu["learner"]["device"] = "cpu";
  const LmRunConfig cpu = parse_lm_run_config(on_cpu, path.string());
  EXPECT_EQ(cpu.learner_device, "cpu");
  lm::GptConfig shrunk = gpt;
  shrunk.vocab_size = 260;
  shrunk.context = 16;
  shrunk.d_model = 16;
  shrunk.n_layers = 1;
  shrunk.n_heads = 2;
  const auto learner = lm::make_language_learner(cpu.learner, shrunk, cpu.train.seed, {});
  EXPECT_EQ(learner->name(), cpu.learner["type"].as<std::string>()) << shipped.file;
}

TEST(ShippedGpuConfig, TenMillionParameterModelParsesAndBuilds) {
  check_shipped({"lm_gpu_10m.yaml", 11644416, 4096, 256, 32});
}

TEST(ShippedGpuConfig, GptTwoSmallShapedModelParsesAndBuilds) {
  check_shipped({"lm_gpu_124m.yaml", 123615744, 24576, 1024, 16});
}

}  // namespace
}  // namespace kwm::launch
