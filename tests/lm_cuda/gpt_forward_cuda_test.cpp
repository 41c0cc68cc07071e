// GptForwardCuda (fp32 on the GPU) against core/lm's forward and cross entropy in fp64: the tiny
// config (tied head with bias) and a deeper one (d 128, 4 layers, context 128, untied head
// without bias), full-context and shorter batches, a parameter re-upload, workspace growth, and
// bad input; the head-only pass on the kept body. Tolerances (fp32 against fp64): logits max|a - b|
// / max|b| <= 1e-5, total NLL relative 1e-6. Measured on an H200 (2026-11-28, docs/gpu-lm.md):
// logits at most 7.8e-7, total NLL at most 5.6e-8, so the bounds leave more than 10x headroom; the
// errors are printed. Skipped without a CUDA device.
#include <gtest/gtest.h>

#include <iostream>
#include <stdexcept>

#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "tests/lm/lm_test_support.hpp"
#include "tests/lm_cuda/lm_cuda_test_support.hpp"

namespace kwm::lm {
namespace {

constexpr double kLogitTolerance = 1e-5;
constexpr double kLossTolerance = 1e-6;

// Logits and total NLL of the device pass against the fp64 reference on one batch.
void expect_matches_reference(cuda::GptForwardCuda& device, const GptParameters<double>& reference,
                              const TokenBatch& batch, const char* what) {
  const Matrix<double> logits64 = forward(reference, batch, nullptr);
  const double nll64 = cross_entropy(logits64, batch.targets).total_nll;
  const Matrix<float> logits32 = device.logits(batch);
  ASSERT_EQ(logits32.rows(), logits64.rows()) << what;
  ASSERT_EQ(logits32.cols(), logits64.cols()) << what;
  const double logit_error = testing::relative_error(logits32, logits64);
  const double nll32 = device.total_nll(batch);
  const double loss_error = std::abs(nll32 - nll64) / nll64;
  EXPECT_LT(logit_error, kLogitTolerance) << what;
  EXPECT_LT(loss_error, kLossTolerance) << what << ": device " << nll32 << ", reference " << nll64;
  std::cout << "[ measured ] " << what << " (batch " << batch.batch << " x " << batch.length
            << "): logits " << logit_error << ", total NLL " << loss_error << " relative\n";
}

TEST(LmCudaForward, TinyConfigMatchesFp64Reference) {
  KWM_REQUIRE_CUDA_DEVICE();
  const GptConfig config;  // vocab 256, context 64, d 64, 2 layers, 4 heads, tied, head bias
  const auto reference = testing::random_parameters(config, 31, 0.1);
  cuda::GptForwardCuda device(reference.cast<float>());
  expect_matches_reference(device, reference, testing::random_batch(config, 3, config.context, 32),
                           "tiny");
  expect_matches_reference(device, reference, testing::random_batch(config, 2, 1, 33),
                           "tiny, length 1");
}

TEST(LmCudaForward, DeeperConfigMatchesFp64ReferenceAndGrowsItsWorkspace) {
  KWM_REQUIRE_CUDA_DEVICE();
  const GptConfig config = testing::deeper_config();
  const auto reference = testing::random_parameters(config, 41, 0.1);
  cuda::GptForwardCuda device(reference.cast<float>());
  // Short first, then longer and wider (the workspace grows), then short again.
  expect_matches_reference(device, reference, testing::random_batch(config, 3, 77, 42),
                           "d128 L4, length 77");
  expect_matches_reference(device, reference, testing::random_batch(config, 4, config.context, 43),
                           "d128 L4, full context");
  expect_matches_reference(device, reference, testing::random_batch(config, 1, 33, 44),
                           "d128 L4, length 33");
}

TEST(LmCudaForward, UploadReplacesTheParameters) {
  KWM_REQUIRE_CUDA_DEVICE();
  const GptConfig config = testing::small_config(false);
  const auto first = testing::random_parameters(config, 51, 0.3);
  const auto second = testing::random_parameters(config, 52, 0.3);
  const auto batch = testing::random_batch(config, 2, config.context, 53);
  cuda::GptForwardCuda device(first.cast<float>());
  expect_matches_reference(device, first, batch, "small, first parameters");
  device.parameters().upload(second.cast<float>());
  expect_matches_reference(device, second, batch, "small, uploaded parameters");

  const auto other_shape = testing::random_parameters(testing::small_config(true), 54, 0.3);
  EXPECT_THROW(device.parameters().upload(other_shape.cast<float>()), std::invalid_argument);
}

// head_total_nll (mezo's second point on a head subspace): after a whole pass, new ln_f and head
// parameters scored on the kept residual stream give exactly what a whole pass with them gives,
// and the fp64 reference to the usual bound; without a pass with targets first it refuses.
TEST(LmCudaForward, HeadOnlyPassOnTheKeptBodyEqualsAWholePass) {
  KWM_REQUIRE_CUDA_DEVICE();
  const GptConfig config = testing::small_config(false);
  const auto first = testing::random_parameters(config, 71, 0.3);
  GptParameters<double> second = first;
  const auto other = testing::random_parameters(config, 72, 0.3);
  second.ln_f = other.ln_f;
  second.head = other.head;
  const auto batch = testing::random_batch(config, 3, config.context, 73);
  cuda::GptForwardCuda device(first.cast<float>());
  EXPECT_THROW((void)device.head_total_nll(), std::logic_error);
  const double whole_first = device.total_nll(batch);
  device.parameters().upload(second.cast<float>());
  const double head_only = device.head_total_nll();
  const double whole_second = device.total_nll(batch);
  EXPECT_NE(head_only, whole_first);
  EXPECT_EQ(head_only, whole_second);
  const double reference = cross_entropy(forward(second, batch, nullptr), batch.targets).total_nll;
  EXPECT_LT(std::abs(head_only - reference) / reference, kLossTolerance);
  (void)device.logits(batch);  // no targets: nothing for a head-only pass to score
  EXPECT_THROW((void)device.head_total_nll(), std::logic_error);
}

TEST(LmCudaForward, BadInputThrowsNamingTheProblem) {
  KWM_REQUIRE_CUDA_DEVICE();
  const GptConfig config = testing::small_config(true);
  cuda::GptForwardCuda device(testing::random_parameters(config, 61).cast<float>());
  const auto expect_error = [&](const TokenBatch& batch, bool loss, const std::string& fragment) {
    try {
      if (loss) {
        (void)device.total_nll(batch);
      } else {
        (void)device.logits(batch);
      }
      ADD_FAILURE() << "no exception; expected one mentioning '" << fragment << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  auto bad_token = testing::random_batch(config, 2, 4, 62);
  bad_token.inputs[5] = config.vocab_size;
  expect_error(bad_token, false, "outside the vocabulary");
  auto bad_target = testing::random_batch(config, 2, 4, 63);
  bad_target.targets[3] = -1;
  expect_error(bad_target, true, "target token id -1");
  auto short_targets = testing::random_batch(config, 2, 4, 64);
  short_targets.targets.pop_back();
  expect_error(short_targets, true, "targets");
  expect_error(testing::random_batch(config, 1, config.context + 1, 65), false,
               "exceeds the model context");
}

}  // namespace
}  // namespace kwm::lm
