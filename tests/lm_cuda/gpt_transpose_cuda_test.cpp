// GptTransposeCuda (fp32 on the GPU) against core/lm's transpose_jacobian in fp64 on the same
// parameters and batch: every linear layer's input a_s and output innovation dz_s = J_z^T e, and
// J_theta^T e for every parameter tensor (weights and biases by GEMM, layer-norm gains and biases,
// the deterministic embedding scatter-adds, a tied head's share in the token embedding).
// Error of a tensor: max|a - b| / max|b|. Tolerance 1e-5 (fp32 against fp64); measured on an
// H200 (2026-11-28, docs/gpu-lm.md): at most 1.4e-6 over every site and tensor, so the bound
// leaves 7x headroom (the first device run used 1e-4 and printed the errors). Skipped without a
// CUDA device.
#include <gtest/gtest.h>

#include <iostream>
#include <string>

#include "core/lm/cross_entropy.hpp"
#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/cuda/gpt_transpose_cuda.hpp"
#include "core/lm/gpt_backward.hpp"
#include "tests/lm/lm_test_support.hpp"
#include "tests/lm_cuda/lm_cuda_test_support.hpp"

namespace kwm::lm {
namespace {

constexpr double kTransposeTolerance = 1e-5;

// Runs both passes on one batch and checks every site and every parameter tensor; returns the
// worst error seen.
double expect_transpose_matches(cuda::GptTransposeCuda& device,
                                const GptParameters<double>& reference, const TokenBatch& batch,
                                const std::string& what) {
  ForwardCache<double> cache;
  const Matrix<double> logits = forward(reference, batch, &cache);
  const CrossEntropy<double> loss = cross_entropy(logits, batch.targets);
  const TransposedJacobian<double> expected =
      transpose_jacobian(reference, cache, output_innovation(loss, batch.targets));
  const double nll = device.run(batch);
  EXPECT_LT(std::abs(nll - loss.total_nll) / loss.total_nll, 1e-6) << what;
  double worst_site = 0.0, worst_input = 0.0, worst_parameter = 0.0;
  std::string worst_name;
  for (std::size_t s = 0; s < expected.linear_output.size(); ++s) {
    const double e = testing::relative_error(device.linear_output(s), expected.linear_output[s]);
    const double a = testing::relative_error(device.linear_input(s), cache.linear[s].input);
    EXPECT_LT(e, kTransposeTolerance) << what << ": output innovation of linear site " << s;
    EXPECT_LT(a, kTransposeTolerance) << what << ": input of linear site " << s;
    worst_site = std::max(worst_site, e);
    worst_input = std::max(worst_input, a);
  }
  const GptParameters<float> got = device.parameter_transpose();
  const auto want = expected.parameters.tensors();
  const auto have = got.tensors();
  EXPECT_EQ(want.size(), have.size());
  for (std::size_t k = 0; k < want.size() && k < have.size(); ++k) {
    const Eigen::Map<const Matrix<double>> w(want[k].data, want[k].rows, want[k].cols);
    const Eigen::Map<const Matrix<float>> h(have[k].data, have[k].rows, have[k].cols);
    const double e = testing::relative_error(h, w);
    EXPECT_LT(e, kTransposeTolerance) << what << ": J^T e of " << want[k].name;
    if (e > worst_parameter) {
      worst_parameter = e;
      worst_name = want[k].name;
    }
  }
  std::cout << "[ measured ] " << what << " (batch " << batch.batch << " x " << batch.length
            << "): dz " << worst_site << ", inputs " << worst_input << ", J_theta^T e "
            << worst_parameter << " (" << worst_name << ")\n";
  return std::max({worst_site, worst_input, worst_parameter});
}

TEST(LmCudaTranspose, TinyTiedConfigMatchesFp64Reference) {
  KWM_REQUIRE_CUDA_DEVICE();
  const GptConfig config;  // vocab 256, context 64, d 64, 2 layers, 4 heads, tied, head bias
  const auto reference = testing::random_parameters(config, 71, 0.1);
  cuda::GptTransposeCuda device(reference.cast<float>());
  expect_transpose_matches(device, reference, testing::random_batch(config, 3, config.context, 72),
                           "tiny tied");
  expect_transpose_matches(device, reference, testing::random_batch(config, 2, 1, 73),
                           "tiny tied, length 1");
}

TEST(LmCudaTranspose, DeeperUntiedConfigMatchesFp64ReferenceAcrossBatchShapes) {
  KWM_REQUIRE_CUDA_DEVICE();
  const GptConfig config = testing::deeper_config();
  const auto reference = testing::random_parameters(config, 81, 0.1);
  cuda::GptTransposeCuda device(reference.cast<float>());
  expect_transpose_matches(device, reference, testing::random_batch(config, 3, 77, 82),
                           "d128 L4, length 77");
  expect_transpose_matches(device, reference, testing::random_batch(config, 4, config.context, 83),
                           "d128 L4, full context");
  expect_transpose_matches(device, reference, testing::random_batch(config, 1, 33, 84),
                           "d128 L4, length 33");
}

// Many repeats of few tokens: the token scatter-add sums long column lists.
TEST(LmCudaTranspose, RepeatedTokensScatterAddIsDeterministic) {
  KWM_REQUIRE_CUDA_DEVICE();
  GptConfig config = testing::small_config(false);
  config.context = 32;
  const auto reference = testing::random_parameters(config, 91, 0.3);
  TokenBatch batch = testing::random_batch(config, 6, config.context, 92);
  for (auto& t : batch.inputs) t %= 3;
  cuda::GptTransposeCuda device(reference.cast<float>());
  expect_transpose_matches(device, reference, batch, "small, 3 distinct tokens");
  const Vector<float> first = device.parameter_transpose().flatten();
  (void)device.run(batch);
  const Vector<float> second = device.parameter_transpose().flatten();
  EXPECT_EQ((first - second).cwiseAbs().maxCoeff(), 0.0f) << "two runs differ";
}

TEST(LmCudaTranspose, BadInputThrowsNamingTheProblem) {
  KWM_REQUIRE_CUDA_DEVICE();
  const GptConfig config = testing::small_config(true);
  cuda::GptTransposeCuda device(testing::random_parameters(config, 95).cast<float>());
  auto bad_target = testing::random_batch(config, 2, 4, 96);
  bad_target.targets[3] = config.vocab_size;
  EXPECT_THROW(
      {
        try {
          (void)device.run(bad_target);
        } catch (const std::invalid_argument& e) {
          EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos);
          throw;
        }
      },
      std::invalid_argument);
  EXPECT_THROW((void)device.run(testing::random_batch(config, 1, config.context + 1, 97)),
               std::invalid_argument);
}

}  // namespace
}  // namespace kwm::lm
