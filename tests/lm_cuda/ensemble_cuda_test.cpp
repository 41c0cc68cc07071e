// EnsembleCudaLearner (kwm train's kwm-ensemble with learner.device: cuda) against the CPU
// EnsembleLearner in fp64, from the same seed: the ensemble's start and every random draw are the
// CPU learner's (bitwise), the per-token observables of the device heads against core/lm's fp64
// forward pass, several steps (prequential NLL, the mean parameters' change, every member's
// change, state keys, shapes and counters), emulated ranks, checkpoints that cross devices both
// ways and resume bit for bit on the GPU, and the refusals. Errors are max|a - b| / max|b|. The
// device tests skip without a CUDA device; the layout and the refusals are checked everywhere.
//
// Bounds (docs/gpu-lm.md, "kwm-ensemble on the GPU"): the device computes the members' logits
// in fp32 (unit roundoff 6e-8; the forward pass's logits measured within 1e-6 of fp64), so the
// observables carry about 1e-7 relative error, bounded at 1e-5 (measured on the H100, 2026-12-07:
// 1.5e-8). Everything after the observables is the CPU learner's fp64 code; the analysis weights
// depend on the differences between members' observables (deviations of about initial_std times
// the head's sensitivity), which magnify the relative error, and the steps compound it: the
// members' and the mean's change are bounded at 1e-4 (measured on the H100, 2026-12-07: at most
// 2.1e-6; the first bound was 1e-3).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "core/lm/cross_entropy.hpp"
#include "core/lm/cuda/ensemble_cuda.hpp"
#include "core/lm/cuda/ensemble_cuda_learner.hpp"
#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/ensemble_learner.hpp"
#include "core/lm/learners/learner_factory.hpp"
#include "tests/lm/lm_test_support.hpp"
#include "tests/lm_baselines/lm_test_support.hpp"
#include "tests/lm_cuda/cross_device_checkpoints.hpp"
#include "tests/lm_cuda/lm_cuda_test_support.hpp"

namespace kwm::lm::ensemble_cuda_test {
namespace {

// Per-token observables, fp32 heads against fp64. Measured on the H100 (2026-12-07): 1.5e-8;
// bound 10x or more above it.
constexpr double kObservableBound = 1e-5;
// Prequential NLL per step, relative. Measured on the H100 (2026-12-07): 6.6e-7; bound 10x or
// more above it.
constexpr double kNllBound = 1e-5;
// Members' and mean's change from the start (worst over the steps, the resumed runs and the
// emulated ranks). Measured on the H100 (2026-12-07): 2.1e-6; bound 10x or more above it.
constexpr double kChangeBound = 1e-4;
constexpr std::uint64_t kEnsembleSeed = 13;

// The shipped tiny config's settings (configs/lm_tiny_ensemble.yaml) on fewer members and rank 2.
const char* const kLoraLearner =
    "{type: kwm-ensemble, members: 6, subspace: {type: lora, rank: 2}, initial_std: 0.1, "
    "observation: nll_residual, observation_noise: 3.0, process_noise: 0.003, "
    "process_noise_mode: centered}";
// Every other branch: the head subspace, target_probability, perturbed observations, inflation,
// the random-walk noise with an annealed q.
const char* const kHeadLearner =
    "{type: kwm-ensemble, members: 5, subspace: head, initial_std: 0.2, observation: "
    "target_probability, observation_noise: 0.5, inflation: 1.02, process_noise: 0.01, "
    "process_noise_mode: walk, process_noise_halflife: 10, perturb_observations: true}";

GptConfig ensemble_model(bool head_bias = true) { return testing::small_config(false, head_bias); }

std::unique_ptr<LanguageLearner> cpu_ensemble(const char* learner, bool head_bias = true,
                                              LmCollectives collectives = {}) {
  return make_language_learner(YAML::Load(learner), ensemble_model(head_bias), kEnsembleSeed,
                               std::move(collectives));
}

std::unique_ptr<LanguageLearner> gpu_ensemble(const char* learner, bool head_bias = true,
                                              const LmCollectives& collectives = {}) {
  return cuda::make_ensemble_cuda_learner(YAML::Load(learner), ensemble_model(head_bias),
                                          kEnsembleSeed, collectives);
}

TokenBatch ensemble_batch(int s, bool head_bias = true) {
  return testing::random_batch(ensemble_model(head_bias), 4, 8, 500 + s);
}

double relative_to(const Eigen::MatrixXd& have, const Eigen::MatrixXd& want) {
  const double scale = want.cwiseAbs().maxCoeff();
  return (have - want).cwiseAbs().maxCoeff() / (scale > 0.0 ? scale : 1.0);
}

// The members (dimension x J) of a state holding all of them.
Eigen::MatrixXd members_of(const LearnerState& s) {
  const auto j_total = static_cast<int>(s.counters.at("members"));
  Eigen::MatrixXd out(s.counters.at("dimension"), j_total);
  for (int j = 0; j < j_total; ++j) out.col(j) = s.tensors.at("member." + std::to_string(j));
  return out;
}

void expect_same_keys(const LearnerState& have, const LearnerState& want) {
  ASSERT_EQ(have.tensors.size(), want.tensors.size());
  for (const auto& [key, tensor] : want.tensors) {
    ASSERT_TRUE(have.tensors.count(key)) << key;
    EXPECT_EQ(have.tensors.at(key).rows(), tensor.rows()) << key;
    EXPECT_EQ(have.tensors.at(key).cols(), tensor.cols()) << key;
  }
  EXPECT_EQ(have.counters, want.counters);
}

bool same_state(const LearnerState& a, const LearnerState& b) {
  return a.counters == b.counters && a.tensors == b.tensors;
}

// Steps both learners through batches [first, first + steps) and compares after every step; the
// change is measured from `start` (members) and `start_mean` (the mean's parameters).
struct Worst {
  double nll = 0.0, members = 0.0, mean = 0.0;
};
Worst expect_steps_match(LanguageLearner& gpu, LanguageLearner& cpu, int first, int steps,
                         bool head_bias, const Eigen::MatrixXd& start,
                         const Eigen::VectorXd& start_mean, const std::string& label) {
  Worst worst;
  for (int s = first; s < first + steps; ++s) {
    const StepReport want = cpu.step(ensemble_batch(s, head_bias));
    const StepReport have = gpu.step(ensemble_batch(s, head_bias));
    EXPECT_FALSE(want.skipped) << label << " step " << s;
    EXPECT_EQ(have.skipped, want.skipped) << label << " step " << s;
    EXPECT_EQ(have.tokens, want.tokens);
    EXPECT_EQ(have.forward_passes, want.forward_passes);
    EXPECT_EQ(have.transposed_jacobian_passes, 0);
    const double nll = std::abs(have.nll_before - want.nll_before) / want.nll_before;
    const LearnerState cs = cpu.state();
    const LearnerState gs = gpu.state();
    expect_same_keys(gs, cs);
    EXPECT_TRUE(gs.tensors.at("base") == cs.tensors.at("base")) << label;
    const double members = relative_to(members_of(gs) - start, members_of(cs) - start);
    const double mean = relative_to(gpu.parameters().flatten() - start_mean,
                                    cpu.parameters().flatten() - start_mean);
    EXPECT_LT(nll, kNllBound) << label << " step " << s;
    EXPECT_LT(members, kChangeBound) << label << " step " << s;
    EXPECT_LT(mean, kChangeBound) << label << " step " << s;
    worst.nll = std::max(worst.nll, nll);
    worst.members = std::max(worst.members, members);
    worst.mean = std::max(worst.mean, mean);
  }
  return worst;
}

void expect_sequence_matches(const char* learner, bool head_bias, bool shift,
                             const std::string& label) {
  const auto cpu = cpu_ensemble(learner, head_bias);
  const auto gpu = gpu_ensemble(learner, head_bias);
  EXPECT_EQ(gpu->name(), cpu->name());
  EXPECT_EQ(gpu->derivative_label().rfind(cpu->derivative_label(), 0), 0u);
  EXPECT_NE(gpu->derivative_label().find("CUDA"), std::string::npos);
  if (shift) {  // train.head_bias_init: unigram shifts the head bias before the first step
    const Eigen::VectorXd delta =
        0.3 * Eigen::VectorXd::LinSpaced(ensemble_model(head_bias).vocab_size, -1.0, 1.0);
    cpu->shift_head_bias(delta);
    gpu->shift_head_bias(delta);
  }
  // The start and the mean are the CPU learner's, bit for bit (the same draws, fp64 on the host).
  EXPECT_TRUE(same_state(gpu->state(), cpu->state())) << label;
  EXPECT_TRUE(gpu->parameters().flatten() == cpu->parameters().flatten()) << label;
  const Eigen::MatrixXd start = members_of(cpu->state());
  const Eigen::VectorXd start_mean = cpu->parameters().flatten();
  const Worst w = expect_steps_match(*gpu, *cpu, 0, 4, head_bias, start, start_mean, label);
  std::cout << "[ measured ] " << label << ": NLL " << w.nll << ", members' change " << w.members
            << ", mean's change " << w.mean << "\n";
}

TEST(LmCudaEnsemble, HeadLayoutAgreesWithTheSubspace) {
  // No device needed: the layout the kernels read, checked against ParameterSubspace::embed.
  for (const bool bias : {true, false}) {
    const auto base = GptParameters<double>::init(ensemble_model(bias), 3);
    SubspaceConfig lora;
    lora.kind = SubspaceKind::lora;
    lora.blocks = 0;
    lora.rank = 3;
    SubspaceConfig head;
    head.kind = SubspaceKind::head;
    for (const SubspaceConfig& c : {lora, head}) {
      const cuda::EnsembleHeadLayout l = cuda::ensemble_head_layout(c, base);
      EXPECT_EQ(l.dimension, ParameterSubspace(c, base).dimension()) << describe(c);
      EXPECT_EQ(l.low_rank, c.kind == SubspaceKind::lora);
      EXPECT_EQ(l.head_bias_at >= 0, bias);
    }
  }
}

TEST(LmCudaEnsemble, RefusesOtherSubspacesTiedHeadsOtherTypesAndAMissingDevice) {
  // Runs without a GPU too: the subspace is checked before the device.
  const GptConfig untied = ensemble_model();
  for (const char* subspace :
       {"all", "{type: last_blocks, blocks: 1}", "{type: random, dimension: 8, seed: 1}",
        "{type: lora, rank: 2, blocks: 1}"}) {
    const std::string yaml =
        std::string("{type: kwm-ensemble, members: 4, subspace: ") + subspace + "}";
    try {
      cuda::make_ensemble_cuda_learner(YAML::Load(yaml), untied, 1, {});
      ADD_FAILURE() << subspace << " was not refused";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(
                    "learner.device: cuda runs kwm-ensemble with subspace head or"),
                std::string::npos)
          << e.what();
    }
  }
  GptConfig tied = untied;
  tied.tied_head = true;
  try {
    cuda::make_ensemble_cuda_learner(YAML::Load("{type: kwm-ensemble, subspace: head}"), tied, 1,
                                     {});
    ADD_FAILURE() << "a tied head was not refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("on a tied head"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cuda::make_ensemble_cuda_learner(YAML::Load("{type: adamw}"), untied, 1, {}),
               std::invalid_argument);
  EXPECT_THROW(cuda::make_ensemble_cuda_learner(
                   YAML::Load("{type: kwm-ensemble, subspace: head, members: 1}"), untied, 1, {}),
               std::invalid_argument);
  if (!cuda::device_available()) {
    try {
      gpu_ensemble(kLoraLearner);
      ADD_FAILURE() << "no device, yet a learner was built";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
    }
  }
}

TEST(LmCudaEnsemble, DeviceObservablesMatchTheFp64ForwardPass) {
  KWM_REQUIRE_CUDA_DEVICE();
  // Every point through core/lm's whole forward pass in fp64 against the shared body and the
  // per-point heads on the device, in one group and in groups of one point.
  for (const char* learner : {kLoraLearner, kHeadLearner}) {
    const EnsembleConfig config = parse_ensemble_config(YAML::Load(learner));
    const GptConfig model = ensemble_model();
    cuda::EnsembleCuda wide(config, model, kEnsembleSeed);
    cuda::EnsembleCuda narrow(config, model, kEnsembleSeed, {}, 1);
    const TokenBatch batch = ensemble_batch(0);
    const Eigen::MatrixXd& points = wide.members();
    const Eigen::VectorXd mean = points.rowwise().mean();
    const Eigen::MatrixXd have = wide.predict(batch, points, mean);
    const Eigen::MatrixXd grouped = narrow.predict(batch, points, mean);
    EXPECT_EQ(wide.group_size(), points.cols() + 1);
    EXPECT_EQ(narrow.group_size(), 1);
    Eigen::MatrixXd want(batch.tokens(), points.cols() + 1);
    GptParameters<double> p = GptParameters<double>::zeros(model);
    for (Eigen::Index k = 0; k <= points.cols(); ++k) {
      wide.subspace().embed(k < points.cols() ? Eigen::VectorXd(points.col(k)) : mean, p);
      const Matrix<double> logits = forward(p, batch, nullptr);
      for (Eigen::Index n = 0; n < logits.cols(); ++n) {
        const double top = logits.col(n).maxCoeff();
        const double nll = top + std::log((logits.col(n).array() - top).exp().sum()) -
                           logits(batch.targets[static_cast<std::size_t>(n)], n);
        const bool probability = config.observation == EnsembleObservation::target_probability;
        want(n, k) = k == points.cols() ? nll
                     : probability      ? std::exp(-std::max(nll, 0.0))
                                        : std::sqrt(2.0 * std::max(nll, 0.0));
      }
    }
    const double error = relative_to(have, want);
    const double grouping = relative_to(grouped, have);
    EXPECT_LT(error, kObservableBound) << learner;
    EXPECT_LT(grouping, kObservableBound) << learner;
    std::cout << "[ measured ] observables "
              << (config.subspace.kind == SubspaceKind::lora ? "lora" : "head") << ": " << error
              << " against fp64, groups of one against one group " << grouping << "\n";
  }
}

TEST(LmCudaEnsemble, StepSequenceMatchesTheCpuLearner) {
  KWM_REQUIRE_CUDA_DEVICE();
  expect_sequence_matches(kLoraLearner, true, true, "lora rank 2, shifted head bias");
  expect_sequence_matches(kHeadLearner, true, false, "head, target_probability, perturbed");
  expect_sequence_matches(kLoraLearner, false, false, "lora rank 2, no head bias");
}

TEST(LmCudaEnsemble, CheckpointsCrossDevicesBothWays) {
  KWM_REQUIRE_CUDA_DEVICE();
  // 2 steps on each device; the states are fp64 on both: a restore takes them as they are.
  const testing::CrossDeviceCheckpoints c = testing::checkpoint_across_devices(
      [] { return cpu_ensemble(kLoraLearner); }, [] { return gpu_ensemble(kLoraLearner); },
      [](int s) { return ensemble_batch(s); }, 2);
  const Eigen::MatrixXd start = members_of(c.start_state);
  const Eigen::VectorXd start_mean = c.start.flatten();
  EXPECT_TRUE(same_state(c.cpu_from_gpu->state(), c.gpu->state()));
  EXPECT_TRUE(same_state(c.gpu_from_cpu->state(), c.cpu->state()));
  EXPECT_TRUE(c.gpu_from_cpu->parameters().flatten() == c.cpu->parameters().flatten());
  // Two more steps: CPU -> GPU against the uninterrupted CPU run, GPU -> CPU against the
  // uninterrupted GPU run (each pair differs only by the devices' rounding), GPU -> GPU bitwise.
  const Worst from_cpu =
      expect_steps_match(*c.gpu_from_cpu, *c.cpu, 2, 2, true, start, start_mean, "CPU -> GPU");
  const Worst from_gpu =
      expect_steps_match(*c.gpu, *c.cpu_from_gpu, 2, 2, true, start, start_mean, "GPU -> CPU");
  c.step_on({c.gpu_from_gpu.get()});
  EXPECT_TRUE(same_state(c.gpu_from_gpu->state(), c.gpu->state()));
  std::cout << "[ measured ] resumed: CPU -> GPU members " << from_cpu.members << ", mean "
            << from_cpu.mean << "; GPU -> CPU members " << from_gpu.members << ", mean "
            << from_gpu.mean << "\n";
  // A state with another member count is refused, naming both.
  LearnerState wrong = c.gpu->state();
  wrong.counters["members"] = 5;
  EXPECT_THROW(c.gpu_from_gpu->restore(wrong), std::invalid_argument);
}

TEST(LmCudaEnsemble, EmulatedRanksMatchTheCpuLearnerOnAsManyRanks) {
  KWM_REQUIRE_CUDA_DEVICE();
  // Two ranks (threads sharing this GPU), each with half the sequences and half the members,
  // against the CPU learner on two emulated ranks and the GPU learner on one.
  const int ranks = 2, steps = 3;
  const auto single = gpu_ensemble(kHeadLearner);
  for (int s = 0; s < steps; ++s) single->step(ensemble_batch(s));
  std::vector<LearnerState> gpu_states(ranks), cpu_states(ranks);
  std::vector<std::vector<double>> gpu_nll(ranks), cpu_nll(ranks);
  for (const bool on_gpu : {true, false}) {
    testing::run_ranks(ranks, [&](int rank, LmCollectives c) {
      const auto learner =
          on_gpu ? gpu_ensemble(kHeadLearner, true, c) : cpu_ensemble(kHeadLearner, true, c);
      for (int s = 0; s < steps; ++s) {
        const StepReport r = learner->step(testing::share_of(ensemble_batch(s), 2 * rank, 2));
        (on_gpu ? gpu_nll : cpu_nll)[static_cast<std::size_t>(rank)].push_back(r.nll_before);
      }
      (on_gpu ? gpu_states : cpu_states)[static_cast<std::size_t>(rank)] = learner->state();
    });
  }
  const Eigen::MatrixXd start = members_of(cpu_ensemble(kHeadLearner)->state());
  LearnerState gpu_all, cpu_all;
  for (int r = 0; r < ranks; ++r) {
    const auto i = static_cast<std::size_t>(r);
    expect_same_keys(gpu_states[i], cpu_states[i]);
    for (int s = 0; s < steps; ++s) {
      const auto k = static_cast<std::size_t>(s);
      EXPECT_LT(std::abs(gpu_nll[i][k] - cpu_nll[i][k]) / cpu_nll[i][k], kNllBound)
          << "rank " << r << " step " << s;
    }
    gpu_all.tensors.insert(gpu_states[i].tensors.begin(), gpu_states[i].tensors.end());
    gpu_all.counters.insert(gpu_states[i].counters.begin(), gpu_states[i].counters.end());
    cpu_all.tensors.insert(cpu_states[i].tensors.begin(), cpu_states[i].tensors.end());
    cpu_all.counters.insert(cpu_states[i].counters.begin(), cpu_states[i].counters.end());
  }
  const double against_cpu = relative_to(members_of(gpu_all) - start, members_of(cpu_all) - start);
  const double against_one =
      relative_to(members_of(gpu_all) - start, members_of(single->state()) - start);
  EXPECT_LT(against_cpu, kChangeBound);
  EXPECT_LT(against_one, kChangeBound);
  // The union of the ranks' states restores a one-rank GPU learner.
  const auto restored = gpu_ensemble(kHeadLearner);
  restored->restore(gpu_all);
  EXPECT_TRUE(members_of(restored->state()) == members_of(gpu_all));
  std::cout << "[ measured ] 2 emulated ranks: members' change " << against_cpu
            << " against the CPU learner on 2 ranks, " << against_one
            << " against the GPU learner on 1\n";
}

}  // namespace
}  // namespace kwm::lm::ensemble_cuda_test
