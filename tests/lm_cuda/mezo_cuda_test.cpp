// MezoCudaLearner (kwm train's mezo with learner.device: cuda) against the CPU MezoLearner in fp64,
// from the same seed: the device's draws of the direction z against the host's, a sequence of
// steps (the loss at the two points, the projected gradient, the parameters' change), emulated
// ranks, checkpoints that cross devices both ways and resume bit for bit on the GPU, the shifted
// head bias, and the refusals. The device tests skip without a CUDA device; the refusals of the
// subspaces are checked everywhere.
//
// Bounds (docs/gpu-lm.md, "mezo on the GPU"):
// - z: host and device compute the same Box-Muller formula in fp64; their log/sin/cos may differ in
//   the last bits, so the bound is 1e-13 absolute on draws of magnitude up to about 6.
// - the step: the two losses come from fp32 forward passes (logits within about 1e-6 of fp64), so
//   the mean NLL carries about 1e-7 relative error; the projected gradient is their difference over
//   2 eps, which magnifies that by L / (L+ - L-) (eps = 1e-2 here keeps the difference at about
//   1e-3 of L). Measured values are printed; the bounds are 10x or more above them. Measured on
//   the H100 (2026-12-07, 4 steps, three subspaces): z 4.4e-16, loss 5.2e-9, projected gradient
//   2.8e-6, change 1.3e-6; resumed across devices 9.3e-8; 2 emulated ranks against 1 6.1e-9.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/cuda/mezo_cuda_learner.hpp"
#include "core/lm/learners/learner_factory.hpp"
#include "core/lm/learners/mezo_learner.hpp"
#include "tests/lm/lm_test_support.hpp"
#include "tests/lm_baselines/lm_test_support.hpp"
#include "tests/lm_cuda/cross_device_checkpoints.hpp"
#include "tests/lm_cuda/lm_cuda_test_support.hpp"

namespace kwm::lm::mezo_cuda_test {
namespace {

// |z_device - z_host|, absolute (measured 4.4e-16).
constexpr double kDirectionBound = 1e-13;
// nll_before (the mean of L+ and L-), relative (measured 5.2e-9).
constexpr double kLossBound = 1e-7;
// The projected gradient, relative to its size (measured 2.8e-6).
constexpr double kGradientBound = 1e-4;
// The parameters' change from the start, max|a - b| / max|b| (worst over the steps; measured
// 1.3e-6).
constexpr double kChangeBound = 1e-4;
constexpr std::uint64_t kMezoSeed = 17;

// All parameters; weight decay on, so that every term of the update runs.
const char* const kAllLearner =
    "{type: mezo, learning_rate: 1.0e-2, epsilon: 1.0e-2, weight_decay: 0.1}";
// The head subspace: u is ln_f and the head, the body stays at the base (several runs of theta).
const char* const kHeadLearner =
    "{type: mezo, learning_rate: 1.0e-2, epsilon: 1.0e-2, subspace: head}";
// The last block and the head: a run that starts inside the flattened parameters.
const char* const kLastBlockLearner =
    "{type: mezo, learning_rate: 1.0e-2, epsilon: 1.0e-2, subspace: {type: last_blocks, blocks: "
    "1}}";

GptConfig mezo_model() { return testing::small_config(false, true); }

std::unique_ptr<LanguageLearner> cpu_mezo(const char* learner, LmCollectives collectives = {}) {
  return make_language_learner(YAML::Load(learner), mezo_model(), kMezoSeed,
                               std::move(collectives));
}

std::unique_ptr<LanguageLearner> gpu_mezo(const char* learner,
                                          const LmCollectives& collectives = {}) {
  return cuda::make_mezo_cuda_learner(YAML::Load(learner), mezo_model(), kMezoSeed, collectives);
}

TokenBatch mezo_batch(int s) { return testing::random_batch(mezo_model(), 4, 8, 700 + s); }

double relative(double have, double want) {
  return std::abs(have - want) / std::max(std::abs(want), 1e-300);
}

double change_error(const LanguageLearner& have, const LanguageLearner& want,
                    const Eigen::VectorXd& start) {
  return testing::relative_error(have.parameters().flatten() - start,
                                 want.parameters().flatten() - start);
}

struct Worst {
  double loss = 0.0, gradient = 0.0, change = 0.0;
};

// Steps `gpu` and `cpu` through batches first .. first+steps-1 and checks each step's report, the
// projected gradient and the change of the parameters from `start`.
Worst expect_steps_match(LanguageLearner& gpu, LanguageLearner& cpu, int first, int steps,
                         const Eigen::VectorXd& start, const std::string& what) {
  Worst worst;
  for (int s = first; s < first + steps; ++s) {
    const StepReport g = gpu.step(mezo_batch(s));
    const StepReport c = cpu.step(mezo_batch(s));
    EXPECT_EQ(g.skipped, c.skipped) << what << " step " << s;
    EXPECT_EQ(g.forward_passes, 2);
    EXPECT_EQ(g.transposed_jacobian_passes, 0);
    EXPECT_EQ(g.tokens, c.tokens);
    worst.loss = std::max(worst.loss, relative(g.nll_before, c.nll_before));
    const double have = dynamic_cast<const cuda::MezoCudaLearner&>(gpu).last_projected_gradient();
    const double want = dynamic_cast<const MezoLearner&>(cpu).last_projected_gradient();
    worst.gradient = std::max(worst.gradient, relative(have, want));
    worst.change = std::max(worst.change, change_error(gpu, cpu, start));
  }
  EXPECT_LT(worst.loss, kLossBound) << what;
  EXPECT_LT(worst.gradient, kGradientBound) << what;
  EXPECT_LT(worst.change, kChangeBound) << what;
  return worst;
}

TEST(LmCudaMezo, DeviceDirectionEqualsTheHostDraws) {
  KWM_REQUIRE_CUDA_DEVICE();
  const auto learner = gpu_mezo(kAllLearner);
  const auto& gpu = dynamic_cast<const cuda::MezoCudaLearner&>(*learner);
  const Eigen::Index n = learner->parameters().flatten().size();
  double worst = 0.0;
  for (const std::int64_t step : {1, 2, 1000}) {
    const Eigen::VectorXd have = gpu.device_direction(step);
    const Eigen::VectorXd want = MezoLearner::direction(kMezoSeed, step, n);
    ASSERT_EQ(have.size(), want.size());
    worst = std::max(worst, (have - want).cwiseAbs().maxCoeff());
  }
  EXPECT_LT(worst, kDirectionBound);
  std::cout << "[ measured ] direction: max |z_device - z_host| " << worst << " over " << n
            << " coordinates x 3 steps\n";
}

TEST(LmCudaMezo, StepSequenceMatchesTheCpuLearner) {
  KWM_REQUIRE_CUDA_DEVICE();
  for (const char* learner : {kAllLearner, kHeadLearner, kLastBlockLearner}) {
    const auto gpu = gpu_mezo(learner);
    const auto cpu = cpu_mezo(learner);
    const Eigen::VectorXd start = cpu->parameters().flatten();
    // The start is the CPU learner's, exactly (u is fp64 on the device).
    EXPECT_TRUE(gpu->parameters().flatten() == start) << learner;
    const Worst w = expect_steps_match(*gpu, *cpu, 0, 4, start, learner);
    std::cout << "[ measured ] " << learner << ": loss " << w.loss << ", projected gradient "
              << w.gradient << ", change " << w.change << "\n";
    // The state has the CPU learner's keys and shapes.
    const LearnerState g = gpu->state(), c = cpu->state();
    EXPECT_EQ(g.counters, c.counters);
    ASSERT_EQ(g.tensors.size(), c.tensors.size());
    for (const auto& [key, value] : c.tensors) {
      ASSERT_TRUE(g.tensors.count(key)) << key;
      EXPECT_EQ(g.tensors.at(key).rows(), value.rows()) << key;
      EXPECT_EQ(g.tensors.at(key).cols(), value.cols()) << key;
    }
  }
}

TEST(LmCudaMezo, ShiftedHeadBiasIsTheCpuLearnersExactly) {
  KWM_REQUIRE_CUDA_DEVICE();
  for (const char* learner : {kAllLearner, kLastBlockLearner}) {
    const auto gpu = gpu_mezo(learner);
    const auto cpu = cpu_mezo(learner);
    const Eigen::VectorXd start = cpu->parameters().flatten();
    Eigen::VectorXd delta(mezo_model().vocab_size);
    for (Eigen::Index v = 0; v < delta.size(); ++v) delta(v) = 0.1 * static_cast<double>(v % 5 - 2);
    gpu->shift_head_bias(delta);
    cpu->shift_head_bias(delta);
    EXPECT_TRUE(gpu->parameters().flatten() == cpu->parameters().flatten()) << learner;
    const Eigen::VectorXd shifted = cpu_mezo(learner)->parameters().head.bias + delta;
    EXPECT_TRUE(gpu->parameters().head.bias == shifted) << learner;
    // The steps after the shift evaluate the shifted model on the device.
    expect_steps_match(*gpu, *cpu, 0, 2, start, learner);
  }
}

TEST(LmCudaMezo, CheckpointsCrossDevicesBothWaysAndResumeBitwise) {
  KWM_REQUIRE_CUDA_DEVICE();
  const testing::CrossDeviceCheckpoints c = testing::checkpoint_across_devices(
      [] { return cpu_mezo(kAllLearner); }, [] { return gpu_mezo(kAllLearner); },
      [](int s) { return mezo_batch(s); }, 2);
  const Eigen::VectorXd start = c.start.flatten();
  // The states are fp64 on both devices: a restore takes them as they are.
  EXPECT_TRUE(c.gpu_from_cpu->parameters().flatten() == c.cpu->parameters().flatten());
  EXPECT_TRUE(c.cpu_from_gpu->parameters().flatten() == c.gpu->parameters().flatten());
  const Worst from_cpu = expect_steps_match(*c.gpu_from_cpu, *c.cpu, 2, 2, start, "CPU -> GPU");
  const Worst from_gpu = expect_steps_match(*c.gpu, *c.cpu_from_gpu, 2, 2, start, "GPU -> CPU");
  c.step_on({c.gpu_from_gpu.get()});
  EXPECT_TRUE(c.gpu_from_gpu->parameters().flatten() == c.gpu->parameters().flatten());
  EXPECT_EQ(c.gpu_from_gpu->state().counters, c.gpu->state().counters);
  std::cout << "[ measured ] resumed: CPU -> GPU change " << from_cpu.change << "; GPU -> CPU "
            << from_gpu.change << "\n";
  // A state of another size is refused and the learner keeps its own.
  LearnerState wrong = c.gpu->state();
  wrong.tensors["coordinates"] = Eigen::MatrixXd::Zero(3, 1);
  const Eigen::VectorXd before = c.gpu_from_gpu->parameters().flatten();
  EXPECT_THROW(c.gpu_from_gpu->restore(wrong), std::invalid_argument);
  EXPECT_TRUE(c.gpu_from_gpu->parameters().flatten() == before);
}

TEST(LmCudaMezo, EmulatedRanksTakeTheGlobalBatchStep) {
  KWM_REQUIRE_CUDA_DEVICE();
  // Two ranks (threads sharing this GPU), each with half the sequences, against one GPU learner on
  // the whole batch: the three sums are reordered, nothing else differs.
  const int ranks = 2, steps = 3;
  const auto single = gpu_mezo(kAllLearner);
  for (int s = 0; s < steps; ++s) single->step(mezo_batch(s));
  std::vector<Eigen::VectorXd> theta(ranks);
  testing::run_ranks(ranks, [&](int rank, LmCollectives collectives) {
    const auto learner = gpu_mezo(kAllLearner, collectives);
    for (int s = 0; s < steps; ++s) learner->step(testing::share_of(mezo_batch(s), 2 * rank, 2));
    theta[static_cast<std::size_t>(rank)] = learner->parameters().flatten();
  });
  EXPECT_TRUE(theta[0] == theta[1]);
  const double error = testing::relative_error(theta[0], single->parameters().flatten());
  EXPECT_LT(error, 1e-6);
  std::cout << "[ measured ] 2 emulated ranks against 1: " << error << "\n";
}

TEST(LmCudaMezo, ABadBatchIsRefusedAndLosesNothing) {
  KWM_REQUIRE_CUDA_DEVICE();
  // A target outside the vocabulary: refused before the step counts, and the next good step is
  // exactly a fresh learner's first step.
  const auto gpu = gpu_mezo(kAllLearner);
  TokenBatch bad = mezo_batch(0);
  bad.targets[5] = mezo_model().vocab_size;
  try {
    gpu->step(bad);
    ADD_FAILURE() << "a target outside the vocabulary was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos) << e.what();
  }
  EXPECT_EQ(gpu->state().counters.at("step"), 0);
  const auto fresh = gpu_mezo(kAllLearner);
  gpu->step(mezo_batch(0));
  fresh->step(mezo_batch(0));
  EXPECT_TRUE(gpu->parameters().flatten() == fresh->parameters().flatten());
}

TEST(LmCudaMezo, RefusesOtherSubspacesAndOtherTypes) {
  // Runs without a GPU too: the subspace is checked before the device.
  for (const char* subspace : {"{type: random, dimension: 8, seed: 1}", "{type: lora, rank: 2}"}) {
    const std::string yaml = std::string("{type: mezo, subspace: ") + subspace + "}";
    try {
      cuda::make_mezo_cuda_learner(YAML::Load(yaml), mezo_model(), 1, {});
      ADD_FAILURE() << subspace << " was not refused";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(
                    "learner.device: cuda runs mezo with subspace all, head or last_blocks"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(cuda::make_mezo_cuda_learner(YAML::Load("{type: adamw}"), mezo_model(), 1, {}),
               std::invalid_argument);
  EXPECT_THROW(
      cuda::make_mezo_cuda_learner(YAML::Load("{type: mezo, epsilon: 0}"), mezo_model(), 1, {}),
      std::invalid_argument);
  if (!cuda::device_available()) {
    try {
      gpu_mezo(kAllLearner);
      ADD_FAILURE() << "no device, yet a learner was built";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace kwm::lm::mezo_cuda_test
