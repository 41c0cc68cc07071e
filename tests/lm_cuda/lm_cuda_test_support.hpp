// What the device tests share: the skip without a GPU, host <-> device copies of fp32 data, the
// fp32-against-fp64 error measure and the deeper model every pass is also checked on.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <vector>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/device_buffer.hpp"
#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/gpt_config.hpp"
#include "core/lm/gpt_parameters.hpp"

// GTEST_SKIP returns from the test body, so this has to be a macro, not a function.
#define KWM_REQUIRE_CUDA_DEVICE()                                                          \
  if (!kwm::lm::cuda::device_available()) {                                                \
    GTEST_SKIP() << "no CUDA device visible (kwm::lm::cuda::device_available() is false)"; \
  }

namespace kwm::lm::testing {

// Host floats (a std::vector or a column-major Eigen matrix) in a new device buffer of at least one
// element, so that its pointer is never null.
template <typename Host>
cuda::DeviceBuffer<float> upload(const Host& host) {
  const auto count = static_cast<std::size_t>(host.size());
  cuda::DeviceBuffer<float> device(std::max<std::size_t>(count, 1));
  KWM_CUDA_CHECK(
      cudaMemcpy(device.data(), host.data(), count * sizeof(float), cudaMemcpyHostToDevice));
  return device;
}

// `count` floats of device memory into `host`, after all work queued on any stream.
inline void copy_to_host(const float* device, std::size_t count, float* host) {
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
  KWM_CUDA_CHECK(cudaMemcpy(host, device, count * sizeof(float), cudaMemcpyDeviceToHost));
}

// The first `count` floats of `device`.
inline std::vector<float> download(const cuda::DeviceBuffer<float>& device, std::size_t count) {
  std::vector<float> host(count);
  copy_to_host(device.data(), count, host.data());
  return host;
}

// The first rows x cols floats of `device` as a column-major matrix.
inline Eigen::MatrixXf download(const cuda::DeviceBuffer<float>& device, Eigen::Index rows,
                                Eigen::Index cols) {
  Eigen::MatrixXf host(rows, cols);
  copy_to_host(device.data(), static_cast<std::size_t>(host.size()), host.data());
  return host;
}

// max |single - reference| / max |reference|: one number for a whole fp32 matrix (or map) against
// fp64; 0 for an empty tensor (an absent bias). Templated so a map is read in place: copying one
// into a temporary let GCC's -Wnull-dereference fire on the empty tensors' null data in the unity
// build.
template <typename Single, typename Reference>
double relative_error(const Eigen::MatrixBase<Single>& single,
                      const Eigen::MatrixBase<Reference>& reference) {
  if (reference.size() == 0 || single.size() == 0) return 0.0;
  const double scale = reference.cwiseAbs().maxCoeff();
  return (single.template cast<double>() - reference).cwiseAbs().maxCoeff() /
         (scale > 0.0 ? scale : 1.0);
}

// Vocabulary 384, context 128, d 128, 4 layers, 4 heads, untied head without bias.
inline GptConfig deeper_config() {
  GptConfig c;
  c.vocab_size = 384;
  c.context = 128;
  c.d_model = 128;
  c.n_layers = 4;
  c.n_heads = 4;
  c.tied_head = false;
  c.head_bias = false;
  return c;
}

}  // namespace kwm::lm::testing
