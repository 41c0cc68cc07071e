// KwmLinearizedCuda (fp32 on the GPU) against the CPU KwmLinearizedLearner (Eigen fp64) from the
// same start on the same batches: the prequential loss, the parameter change of every tensor and
// the information of every block after two steps (forgetting < 1, so the prior term is used).
// Errors: max|a - b| / max|b| of the change (the parameters themselves agree far closer, since
// the step is small next to them). Tolerances are stated below; measured on an H200 (2026-11-28,
// docs/gpu-lm.md): parameter change at most 1.9e-4, information at most 5.4e-7, so the bounds
// leave 5x and 18x headroom. Skipped without a CUDA device.
#include <gtest/gtest.h>

#include <iostream>
#include <string>

#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/cuda/kwm_linearized_cuda.hpp"
#include "core/lm/learners/kwm_linearized_learner.hpp"
#include "tests/lm/lm_test_support.hpp"
#include "tests/lm_cuda/lm_cuda_test_support.hpp"

namespace kwm::lm {
namespace {

constexpr double kStepTolerance = 1e-3;         // parameter change, fp32 against fp64
constexpr double kInformationTolerance = 1e-5;  // information matrices
constexpr double kStepLossTolerance = 1e-6;     // prequential NLL, relative

KwmLinearizedConfig learner_config() {
  KwmLinearizedConfig c;
  c.initial_variance = 0.5;
  c.forgetting = 0.95;
  c.noise_variance = 4.0;
  return c;
}

double relative(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  const double scale = b.cwiseAbs().maxCoeff();
  return (a - b).cwiseAbs().maxCoeff() / (scale > 0.0 ? scale : 1.0);
}

void expect_steps_match(const KwmLinearizedConfig& config, const GptConfig& model, int batch,
                        int length, const std::string& what) {
  KwmLinearizedLearner cpu(config, model, 7, LmCollectives{});
  const GptParameters<double> start = cpu.parameters();
  cuda::KwmLinearizedCuda gpu(config, start);
  ASSERT_EQ(gpu.block_names(), cpu.block_names());
  for (int s = 0; s < 2; ++s) {
    const TokenBatch data = testing::random_batch(model, batch, length, 100 + s);
    const StepReport want = cpu.step(data);
    const StepReport have = gpu.step(data);
    EXPECT_FALSE(have.skipped) << what;
    EXPECT_LT(std::abs(have.nll_before - want.nll_before) / want.nll_before, kStepLossTolerance)
        << what << ", step " << s;
  }
  EXPECT_EQ(gpu.block_skips(), cpu.block_skips());
  const GptParameters<double> got = gpu.parameters();
  const auto after = cpu.parameters().tensors();
  const auto before = start.tensors();
  const auto have = got.tensors();
  double worst = 0.0;
  std::string worst_name;
  for (std::size_t k = 0; k < after.size(); ++k) {
    const auto map = [](const auto& t) {
      return Eigen::Map<const Eigen::MatrixXd>(t.data, t.rows, t.cols);
    };
    const Eigen::MatrixXd want_change = map(after[k]) - map(before[k]);
    const Eigen::MatrixXd have_change = map(have[k]) - map(before[k]);
    const double e = relative(have_change, want_change);
    EXPECT_LT(e, kStepTolerance) << what << ": change of " << after[k].name;
    if (e > worst) {
      worst = e;
      worst_name = after[k].name;
    }
  }
  const LearnerState state = cpu.state();
  double worst_information = 0.0;
  for (std::size_t b = 0; b < gpu.block_names().size(); ++b) {
    const std::string key = gpu.block_names()[b] + ".information";
    const double e = relative(gpu.information(b), state.tensors.at(key));
    EXPECT_LT(e, kInformationTolerance) << what << ": " << key;
    worst_information = std::max(worst_information, e);
  }
  std::cout << "[ measured ] " << what << " (2 steps of " << batch << " x " << length
            << "): parameter change " << worst << " (" << worst_name << "), information "
            << worst_information << "\n";
}

TEST(LmCudaKwmLinearized, TwoStepsMatchTheFp64CpuLearner) {
  KWM_REQUIRE_CUDA_DEVICE();
  GptConfig model;  // vocab 256, context 64, d 64, 2 layers, 4 heads; the learner unties the head
  expect_steps_match(learner_config(), model, 3, model.context, "tiny");
}

TEST(LmCudaKwmLinearized, NoHeadBiasAndFrozenEmbeddingsAndNormsMatch) {
  KWM_REQUIRE_CUDA_DEVICE();
  GptConfig model = testing::small_config(false, false);
  model.context = 16;
  KwmLinearizedConfig frozen = learner_config();
  frozen.update_embeddings = false;
  frozen.update_layer_norms = false;
  expect_steps_match(frozen, model, 4, 16, "small, head without bias, frozen embeddings/norms");
}

TEST(LmCudaKwmLinearized, RefusesWhatItDoesNotImplement) {
  KWM_REQUIRE_CUDA_DEVICE();
  KwmLinearizedConfig adaptive = learner_config();
  adaptive.noise_mode = LinearizedNoise::adaptive;
  const GptConfig tied;
  const auto untied_start = [&] {
    GptConfig m = tied;
    m.tied_head = false;
    return GptParameters<double>::init(m, 1);
  }();
  EXPECT_THROW(cuda::KwmLinearizedCuda(adaptive, untied_start), std::invalid_argument);
  EXPECT_THROW(cuda::KwmLinearizedCuda(learner_config(), GptParameters<double>::init(tied, 1)),
               std::invalid_argument);
}

}  // namespace
}  // namespace kwm::lm
