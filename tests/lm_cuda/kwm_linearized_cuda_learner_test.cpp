// KwmLinearizedCudaLearner (what kwm train runs with learner.device: cuda) against the CPU
// KwmLinearizedLearner through the LanguageLearner interface: the same step sequence from the same
// seed, the same checkpoint keys and shapes, and checkpoints that cross devices: GPU state
// restored into a CPU learner (and CPU state into a GPU learner) continues to the parameters of
// the uninterrupted runs. Errors: max|a - b| / max|b| of each tensor's change from the start
// (fp32 against fp64; the bound below). The device tests
// skip without a CUDA device; the refusals are checked everywhere.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <string>

#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/cuda/kwm_linearized_cuda_learner.hpp"
#include "core/lm/learners/learner_factory.hpp"
#include "tests/lm/lm_test_support.hpp"
#include "tests/lm_cuda/cross_device_checkpoints.hpp"
#include "tests/lm_cuda/lm_cuda_test_support.hpp"

namespace kwm::lm {
namespace {

// Parameter change from the start after four steps, fp32 against fp64. The fp32 trajectory drifts
// from the fp64 one step by step, most in the layer-norm gains (whose change is small): on the
// H200 (2026-11-28) four steps measured 1.65e-3 (blocks.0.ln1.gain), where two steps measure
// 1.9e-4 (kwm_linearized_cuda_test.cpp, bound 1e-3). This bound was set from that run (which
// failed the first bound, 1e-3); it has not been re-run on a GPU since.
constexpr double kChangeTolerance = 5e-3;
constexpr double kSequenceLossTolerance = 1e-5;  // prequential NLL, relative, over several steps
constexpr double kRoundingTolerance = 1e-6;  // a restored state: the fp64 values rounded to fp32
constexpr std::uint64_t kSeed = 7;

const char* const kLearner =
    "{type: kwm-linearized, initial_variance: 0.5, forgetting: 0.95, noise: {variance: 4.0}}";

GptConfig model() {
  GptConfig m = testing::small_config(false);
  m.context = 16;
  return m;
}

std::unique_ptr<LanguageLearner> cpu_learner() {
  return make_language_learner(YAML::Load(kLearner), model(), kSeed, {});
}

std::unique_ptr<LanguageLearner> gpu_learner() {
  return cuda::make_kwm_linearized_cuda_learner(YAML::Load(kLearner), model(), kSeed, {});
}

TokenBatch batch(int s) { return testing::random_batch(model(), 4, 16, 200 + s); }

// The worst relative error of any tensor's change from `start`.
double change_error(const GptParameters<double>& start, const GptParameters<double>& have,
                    const GptParameters<double>& want, std::string* worst_name = nullptr) {
  const auto s = start.tensors();
  const auto h = have.tensors();
  const auto w = want.tensors();
  const auto map = [](const auto& t) {
    return Eigen::Map<const Eigen::MatrixXd>(t.data, t.rows, t.cols);
  };
  double worst = 0.0;
  for (std::size_t k = 0; k < w.size(); ++k) {
    const Eigen::MatrixXd want_change = map(w[k]) - map(s[k]);
    const Eigen::MatrixXd have_change = map(h[k]) - map(s[k]);
    const double scale = want_change.cwiseAbs().maxCoeff();
    const double e =
        (have_change - want_change).cwiseAbs().maxCoeff() / (scale > 0.0 ? scale : 1.0);
    if (e > worst) {
      worst = e;
      if (worst_name != nullptr) *worst_name = w[k].name;
    }
  }
  return worst;
}

double relative(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff();
}

TEST(LmCudaLearner, StepSequenceMatchesTheCpuLearner) {
  KWM_REQUIRE_CUDA_DEVICE();
  const auto cpu = cpu_learner();
  const auto gpu = gpu_learner();
  EXPECT_EQ(gpu->name(), cpu->name());
  EXPECT_EQ(gpu->derivative_label().rfind(cpu->derivative_label(), 0), 0u);
  EXPECT_NE(gpu->derivative_label().find("CUDA"), std::string::npos);
  const GptParameters<double> start = cpu->parameters();
  EXPECT_LT(relative(gpu->parameters().flatten(), start.flatten()), kRoundingTolerance);
  double worst_loss = 0.0;
  for (int s = 0; s < 4; ++s) {
    const StepReport want = cpu->step(batch(s));
    const StepReport have = gpu->step(batch(s));
    EXPECT_FALSE(have.skipped);
    EXPECT_EQ(have.tokens, want.tokens);
    const double e = std::abs(have.nll_before - want.nll_before) / want.nll_before;
    EXPECT_LT(e, kSequenceLossTolerance) << "step " << s;
    worst_loss = std::max(worst_loss, e);
  }
  std::string name;
  const double worst = change_error(start, gpu->parameters(), cpu->parameters(), &name);
  EXPECT_LT(worst, kChangeTolerance) << name;
  // Same checkpoint keys, shapes and counters.
  const LearnerState want = cpu->state();
  const LearnerState have = gpu->state();
  ASSERT_EQ(have.tensors.size(), want.tensors.size());
  for (const auto& [key, tensor] : want.tensors) {
    ASSERT_TRUE(have.tensors.count(key)) << key;
    EXPECT_EQ(have.tensors.at(key).rows(), tensor.rows()) << key;
    EXPECT_EQ(have.tensors.at(key).cols(), tensor.cols()) << key;
  }
  EXPECT_EQ(have.counters, want.counters);
  std::cout << "[ measured ] 4 steps of 4 x 16 through LanguageLearner: NLL " << worst_loss
            << ", parameter change " << worst << " (" << name << ")\n";
}

TEST(LmCudaLearner, CheckpointsCrossDevicesBothWays) {
  KWM_REQUIRE_CUDA_DEVICE();
  // Uninterrupted references: 4 steps on each device; the states after 2 restored across.
  const testing::CrossDeviceCheckpoints c =
      testing::checkpoint_across_devices(cpu_learner, gpu_learner, batch, 2);
  const GptParameters<double>& start = c.start;
  EXPECT_LT(relative(c.gpu_from_cpu->parameters().flatten(), c.cpu->parameters().flatten()),
            kRoundingTolerance);
  EXPECT_EQ(c.cpu_from_gpu->state().counters, c.gpu_half.counters);
  c.step_on({c.cpu.get(), c.gpu.get(), c.cpu_from_gpu.get(), c.gpu_from_cpu.get()});
  const double cpu_resumed = change_error(start, c.cpu_from_gpu->parameters(), c.cpu->parameters());
  const double gpu_resumed = change_error(start, c.gpu_from_cpu->parameters(), c.cpu->parameters());
  const double gpu_straight = change_error(start, c.gpu->parameters(), c.cpu->parameters());
  EXPECT_LT(cpu_resumed, kChangeTolerance);
  EXPECT_LT(gpu_resumed, kChangeTolerance);
  EXPECT_LT(gpu_straight, kChangeTolerance);
  // A GPU run resumed from its own checkpoint continues exactly (fp32 -> fp64 -> fp32 is exact).
  c.step_on({c.gpu_from_gpu.get()});
  EXPECT_EQ(c.gpu_from_gpu->parameters().flatten(), c.gpu->parameters().flatten());
  std::cout << "[ measured ] change after 2 + 2 steps against the uninterrupted CPU run: "
            << "GPU state resumed on the CPU " << cpu_resumed << ", CPU state resumed on the GPU "
            << gpu_resumed << ", GPU uninterrupted " << gpu_straight << "\n";
}

TEST(LmCudaLearner, ShiftHeadBiasMovesTheDeviceParameters) {
  KWM_REQUIRE_CUDA_DEVICE();
  const auto gpu = gpu_learner();
  const Eigen::VectorXd before = gpu->parameters().head.bias;
  const Eigen::VectorXd delta = Eigen::VectorXd::LinSpaced(before.size(), -1.0, 1.0);
  gpu->shift_head_bias(delta);
  EXPECT_LT((gpu->parameters().head.bias - before - delta).cwiseAbs().maxCoeff(), 1e-6);
  EXPECT_THROW(gpu->shift_head_bias(Eigen::VectorXd::Zero(3)), std::invalid_argument);
  LearnerState bad = gpu->state();
  bad.tensors.erase("head.information");
  EXPECT_THROW(gpu->restore(bad), std::invalid_argument);
}

// No device needed: what the factory refuses before it touches one (several ranks are fine with
// their collectives; without them the learner would train on one rank's data only).
TEST(LmCudaLearner, RefusesOtherLearnersRanksWithoutCollectivesAndAMissingDevice) {
  EXPECT_THROW(cuda::make_kwm_linearized_cuda_learner(YAML::Load("{type: adamw}"), model(), 1, {}),
               std::invalid_argument);
  LmCollectives two;
  two.ranks = 2;
  EXPECT_THROW(cuda::make_kwm_linearized_cuda_learner(YAML::Load(kLearner), model(), 1, two),
               std::invalid_argument);
  if (!cuda::device_available()) {
    try {
      gpu_learner();
      FAIL() << "built a CUDA learner without a device";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace kwm::lm
