// Upload of the GPT parameters: flatten() once, one cudaMemcpy, then pointers at the offsets
// tensors() implies (the same order).
#include "core/lm/cuda/device_parameters.hpp"

#include <map>
#include <stdexcept>
#include <string>

namespace kwm::lm::cuda {
namespace {

bool same_shape(const GptConfig& a, const GptConfig& b) {
  return a.vocab_size == b.vocab_size && a.context == b.context && a.d_model == b.d_model &&
         a.n_layers == b.n_layers && a.n_heads == b.n_heads && a.mlp_width() == b.mlp_width() &&
         a.tied_head == b.tied_head && a.head_bias == b.head_bias;
}

}  // namespace

DeviceGptParameters::DeviceGptParameters(const GptParameters<float>& parameters)
    : config_(parameters.config), size_(parameters.size()) {
  validate(config_);
  if (size_ != parameter_count(config_)) {
    throw std::invalid_argument("DeviceGptParameters: the parameters hold " +
                                std::to_string(size_) + " scalars; the config implies " +
                                std::to_string(parameter_count(config_)));
  }
  storage_.reserve(static_cast<std::size_t>(size_));
  // Offsets of each named tensor in flatten() order.
  std::map<std::string, std::int64_t> offset;
  std::int64_t at = 0;
  for (const auto& t : parameters.tensors()) {
    offset[t.name] = at;
    at += t.size();
  }
  const float* base = storage_.data();
  const auto tensor = [&](const std::string& name) { return base + offset.at(name); };
  const auto linear = [&](const std::string& name, int rows, int cols) {
    return DeviceLinear{tensor(name + ".weight"), tensor(name + ".bias"), rows, cols};
  };
  const auto norm = [&](const std::string& name) {
    return DeviceLayerNorm{tensor(name + ".gain"), tensor(name + ".bias")};
  };
  const int d = config_.d_model, mlp = config_.mlp_width();
  token_embedding_ = tensor("token_embedding");
  position_embedding_ = tensor("position_embedding");
  for (int i = 0; i < config_.n_layers; ++i) {
    const std::string b = "blocks." + std::to_string(i);
    blocks_.push_back({norm(b + ".ln1"), linear(b + ".qkv", 3 * d, d),
                       linear(b + ".attn_out", d, d), norm(b + ".ln2"), linear(b + ".fc", mlp, d),
                       linear(b + ".proj", d, mlp)});
  }
  ln_f_ = norm("ln_f");
  head_.weight = config_.tied_head ? token_embedding_ : tensor("head.weight");
  head_.bias = config_.head_bias ? tensor("head.bias") : nullptr;
  head_.rows = config_.vocab_size;
  head_.cols = d;
  upload(parameters);
}

void DeviceGptParameters::upload(const GptParameters<float>& parameters) {
  if (!same_shape(parameters.config, config_) || parameters.size() != size_) {
    throw std::invalid_argument(
        "DeviceGptParameters::upload: the parameters' config differs from the one the device "
        "copy was built for");
  }
  const Vector<float> flat = parameters.flatten();
  KWM_CUDA_CHECK(cudaMemcpy(storage_.data(), flat.data(),
                            static_cast<std::size_t>(size_) * sizeof(float),
                            cudaMemcpyHostToDevice));
  // A pageable-memory cudaMemcpy may return before its DMA lands, and the forward pass runs on a
  // non-blocking stream that does not wait for the legacy stream: finish the copy here.
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace kwm::lm::cuda
