// DeviceGptParameters: a GptParameters<float> in one device allocation, in flatten() order, with
// pointers to each tensor (column-major as on the host). The tied head points at the token
// embedding; an absent head bias is nullptr.
#pragma once

#include <cstdint>
#include <vector>

#include "core/lm/cuda/device_buffer.hpp"
#include "core/lm/gpt_parameters.hpp"

namespace kwm::lm::cuda {

// z = W a + b with W rows x cols on the device; bias is nullptr when the layer has none.
struct DeviceLinear {
  const float* weight = nullptr;
  const float* bias = nullptr;
  int rows = 0;
  int cols = 0;
};

struct DeviceLayerNorm {
  const float* gain = nullptr;
  const float* bias = nullptr;
};

struct DeviceBlock {
  DeviceLayerNorm ln1;
  DeviceLinear qkv;
  DeviceLinear attn_out;
  DeviceLayerNorm ln2;
  DeviceLinear fc;
  DeviceLinear proj;
};

class DeviceGptParameters {
 public:
  // Allocates and uploads (synchronously). Throws std::invalid_argument when a tensor's shape
  // disagrees with parameters.config.
  explicit DeviceGptParameters(const GptParameters<float>& parameters);

  // Replaces the values; the config must equal the one this was built with (same shapes).
  void upload(const GptParameters<float>& parameters);

  const GptConfig& config() const { return config_; }
  std::int64_t size() const { return size_; }
  const float* token_embedding() const { return token_embedding_; }
  const float* position_embedding() const { return position_embedding_; }
  const std::vector<DeviceBlock>& blocks() const { return blocks_; }
  const DeviceLayerNorm& ln_f() const { return ln_f_; }
  const DeviceLinear& head() const { return head_; }
  // The whole flat storage (flatten() order), and a writable alias of one of this object's
  // tensor pointers (for in-place updates and for mapping a tensor to the same offset in another
  // DeviceGptParameters of the same config: other.data() + (p - data())).
  float* data() { return storage_.data(); }
  const float* data() const { return storage_.data(); }
  float* writable(const float* p) { return storage_.data() + (p - storage_.data()); }

 private:
  GptConfig config_;
  std::int64_t size_ = 0;
  DeviceBuffer<float> storage_;
  const float* token_embedding_ = nullptr;
  const float* position_embedding_ = nullptr;
  std::vector<DeviceBlock> blocks_;
  DeviceLayerNorm ln_f_;
  DeviceLinear head_;
};

}  // namespace kwm::lm::cuda
