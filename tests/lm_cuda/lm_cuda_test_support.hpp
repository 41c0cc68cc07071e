// What the device tests share: the skip without a GPU, the fp32-against-fp64 error measure and the
// deeper model every pass is also checked on.
#pragma once

#include <gtest/gtest.h>

#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/gpt_config.hpp"
#include "core/lm/gpt_parameters.hpp"

// GTEST_SKIP returns from the test body, so this has to be a macro, not a function.
#define KWM_REQUIRE_CUDA_DEVICE()                                                          \
  if (!kwm::lm::cuda::device_available()) {                                                \
    GTEST_SKIP() << "no CUDA device visible (kwm::lm::cuda::device_available() is false)"; \
  }

namespace kwm::lm::testing {

// max |single - reference| / max |reference|: one number for a whole fp32 matrix against fp64.
inline double relative_error(const Matrix<float>& single, const Matrix<double>& reference) {
  const double scale = reference.cwiseAbs().maxCoeff();
  return (single.cast<double>() - reference).cwiseAbs().maxCoeff() / (scale > 0.0 ? scale : 1.0);
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
