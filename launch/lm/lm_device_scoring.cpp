// Held-out scoring on the current CUDA device: parameters uploaded in fp32, windows batched into
// GptForwardCuda::total_nll calls; selection and all-reduce are score_windows'.
#include "launch/lm/lm_device_scoring.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/gpt_config.hpp"

namespace kwm::launch {
namespace {

bool same_config(const lm::GptConfig& a, const lm::GptConfig& b) {
  return YAML::Dump(lm::to_yaml(a)) == YAML::Dump(lm::to_yaml(b));
}

}  // namespace

DeviceScorer::DeviceScorer() = default;
DeviceScorer::~DeviceScorer() = default;

LmScore DeviceScorer::score(Communicator& world, const lm::GptParameters<double>& parameters,
                            const std::vector<std::int32_t>& tokens, int length,
                            std::int64_t max_tokens, double bytes_per_token) {
  const std::int64_t window = std::max(1, length);
  const int windows_per_batch = static_cast<int>(
      std::clamp<std::int64_t>(kDeviceTokensPerBatch / window, 1, kDeviceWindowsPerBatch));
  bool uploaded = false;
  const auto batch_nll = [&](const lm::TokenBatch& batch) {
    if (!uploaded) {
      const lm::GptParameters<float> single = parameters.cast<float>();
      if (forward_ && same_config(forward_->parameters().config(), single.config))
        forward_->parameters().upload(single);
      else  // the first score, or a model rebuilt with another shape
        forward_ = std::make_unique<lm::cuda::GptForwardCuda>(single);
      uploaded = true;
    }
    return forward_->total_nll(batch);
  };
  return score_windows(world, tokens, length, max_tokens, bytes_per_token, windows_per_batch,
                       batch_nll);
}

}  // namespace kwm::launch
