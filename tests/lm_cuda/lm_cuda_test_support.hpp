// What the device tests share: the skip without a GPU, the fp32-against-fp64 error measure and the
// deeper model every pass is also checked on.
#pragma once

#include <gtest/gtest.h>

#include <Eigen/Core>

#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/gpt_config.hpp"
#include "core/lm/gpt_parameters.hpp"

// GTEST_SKIP returns from the test body, so this has to be a macro, not a function.
#define KWM_REQUIRE_CUDA_DEVICE()                                                          \
  if (!kwm::lm::cuda::device_available()) {                                                \
    GTEST_SKIP() << "no CUDA device visible (kwm::lm::cuda::device_available() is false)"; \
  }

namespace kwm::lm::testing {

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
