// KwmLinearizedCuda (fp32 on the GPU) against the CPU KwmLinearizedLearner (Eigen fp64) from the
// same start on the same batches: the prequential loss, the parameter change of every tensor and
// the information of every block after two steps (forgetting < 1, so the prior term is used).
// Errors: max|a - b| / max|b| of the change (the parameters themselves agree far closer, since
// the step is small next to them). Tolerances are stated below; measured on an H200 (2026-11-28,
// docs/gpu-lm.md): parameter change at most 1.9e-4, information at most 5.4e-7, so the bounds
// leave 5x and 18x headroom. With TF32 statistics (set_statistics_math) the information is the
// Gram matrix of TF32-rounded inputs: bounds from TF32's unit roundoff (2^-11, about 4.9e-4), and
// every linear block's information must still factor; BF16 statistics (unit roundoff 2^-8) the
// same at bounds 8x wider. Also: a skipped step (non-finite loss)
// leaves the information untouched although its statistics were queued beside the pass, and the
// phase timing reports a consistent breakdown. Skipped without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <limits>
#include <string>

#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/cuda/kwm_linearized_cuda.hpp"
#include "core/lm/cuda/tensor_math.hpp"
#include "core/lm/learners/kwm_linearized_learner.hpp"
#include "tests/lm/lm_test_support.hpp"
#include "tests/lm_cuda/lm_cuda_test_support.hpp"

namespace kwm::lm {
namespace {

constexpr double kStepTolerance = 1e-3;         // parameter change, fp32 against fp64
constexpr double kInformationTolerance = 1e-5;  // information matrices
constexpr double kStepLossTolerance = 1e-6;     // prequential NLL, relative
// TF32 statistics: the information carries TF32's input rounding (relative 2^-11 per factor of
// each product) and the step inherits it through the solve.
constexpr double kTf32StatisticsStepTolerance = 1e-2;
constexpr double kTf32StatisticsInformationTolerance = 5e-3;
// BF16 statistics: unit roundoff 2^-8, 8x TF32's; measured (H100) TF32 statistics: change 4.8e-4,
// information 7.8e-5, so these bounds leave room for 8x that and more.
constexpr double kBf16StatisticsStepTolerance = 5e-2;
constexpr double kBf16StatisticsInformationTolerance = 5e-3;
// ... and must differ from the fp32 information by more than fp32 rounding, or TF32 was not used.
constexpr double kFp32InformationResolution = 1e-5;

// One step of the small config against the CPU: the smallest changes (layer-norm gains) carry
// relative fp32 errors up to 1.4e-3 (H100, 2026-12-07), above kStepTolerance's two-step setting.
constexpr double kOneStepSmallTolerance = 1e-2;

struct Tolerances {
  double step = kStepTolerance;
  double information = kInformationTolerance;
};

KwmLinearizedConfig learner_config() {
  KwmLinearizedConfig c;
  c.initial_variance = 0.5;
  c.forgetting = 0.95;
  c.noise_variance = 4.0;
  return c;
}

// The small untied model of the tests below (context 16).
GptConfig small_model() {
  GptConfig model = testing::small_config(false);
  model.context = 16;
  return model;
}

// The CPU learner's start on small_model() (seed 7), for the tests that need no CPU learner after.
GptParameters<double> small_start() {
  return KwmLinearizedLearner(learner_config(), small_model(), 7, LmCollectives{}).parameters();
}

// Two GPU learners hold the same parameters and information, bit for bit.
void expect_same_state(cuda::KwmLinearizedCuda& a, cuda::KwmLinearizedCuda& b) {
  EXPECT_EQ(a.parameters().flatten(), b.parameters().flatten());
  for (std::size_t k = 0; k < a.block_names().size(); ++k)
    EXPECT_EQ(a.information(k), b.information(k)) << a.block_names()[k];
}

double relative(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  const double scale = b.cwiseAbs().maxCoeff();
  return (a - b).cwiseAbs().maxCoeff() / (scale > 0.0 ? scale : 1.0);
}

// Returns the worst information error (for the TF32 test's "really applied" check).
double expect_steps_match(const KwmLinearizedConfig& config, const GptConfig& model, int batch,
                          int length, const std::string& what,
                          cuda::TensorMath statistics = cuda::TensorMath::fp32,
                          Tolerances bounds = {}) {
  KwmLinearizedLearner cpu(config, model, 7, LmCollectives{});
  const GptParameters<double> start = cpu.parameters();
  cuda::KwmLinearizedCuda gpu(config, start);
  gpu.set_statistics_math(statistics);
  if (gpu.block_names() != cpu.block_names()) {
    ADD_FAILURE() << what << ": the GPU learner's blocks differ from the CPU learner's";
    return 0.0;
  }
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
    EXPECT_LT(e, bounds.step) << what << ": change of " << after[k].name;
    if (e > worst) {
      worst = e;
      worst_name = after[k].name;
    }
  }
  const LearnerState state = cpu.state();
  double worst_information = 0.0;
  for (std::size_t b = 0; b < gpu.block_names().size(); ++b) {
    const std::string key = gpu.block_names()[b] + ".information";
    const Eigen::MatrixXd information = gpu.information(b);
    const double e = relative(information, state.tensors.at(key));
    EXPECT_LT(e, bounds.information) << what << ": " << key;
    worst_information = std::max(worst_information, e);
    if (information.rows() == information.cols() && information.rows() > 1) {
      EXPECT_EQ(information.llt().info(), Eigen::Success) << what << ": " << key << " not SPD";
    }
  }
  std::cout << "[ measured ] " << what << " (2 steps of " << batch << " x " << length
            << "): parameter change " << worst << " (" << worst_name << "), information "
            << worst_information << "\n";
  return worst_information;
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

TEST(LmCudaKwmLinearized, Tf32StatisticsTrackTheFp64LearnerAndStayPositiveDefinite) {
  KWM_REQUIRE_CUDA_DEVICE();
  GptConfig model;
  const double worst = expect_steps_match(
      learner_config(), model, 3, model.context, "tiny, TF32 statistics", cuda::TensorMath::tf32,
      {kTf32StatisticsStepTolerance, kTf32StatisticsInformationTolerance});
  EXPECT_GT(worst, kFp32InformationResolution) << "the information equals fp32's: TF32 not used";
}

// BF16 statistics: the Gram matrix of bfloat16-rounded [x; 1] (the bias row summed from the same
// rounded values), still positive definite with the prior, within BF16's bounds of fp64, and
// coarser than TF32's (or BF16 was not used).
TEST(LmCudaKwmLinearized, Bf16StatisticsTrackTheFp64LearnerAndStayPositiveDefinite) {
  KWM_REQUIRE_CUDA_DEVICE();
  GptConfig model;
  const double tf32 = expect_steps_match(
      learner_config(), model, 3, model.context, "tiny, TF32 statistics", cuda::TensorMath::tf32,
      {kTf32StatisticsStepTolerance, kTf32StatisticsInformationTolerance});
  const double bf16 = expect_steps_match(
      learner_config(), model, 3, model.context, "tiny, BF16 statistics", cuda::TensorMath::bf16,
      {kBf16StatisticsStepTolerance, kBf16StatisticsInformationTolerance});
  EXPECT_GT(bf16, tf32) << "the BF16 information is no coarser than TF32's: BF16 not used";
}

// A non-finite loss skips the step: the statistics and factors queued beside the pass are
// discarded (the information stays the prior), and the next finite step equals, bit for bit, the
// first step of a learner that never skipped. (Against the CPU learner this one-step setting has
// no fp32 bound of its own: expect_steps_match covers the fp32 error.)
TEST(LmCudaKwmLinearized, SkippedStepLeavesTheInformationAndTheNextStepMatches) {
  KWM_REQUIRE_CUDA_DEVICE();
  const GptConfig model = small_model();
  KwmLinearizedLearner cpu(learner_config(), model, 7, LmCollectives{});
  const GptParameters<double> start = cpu.parameters();
  cuda::KwmLinearizedCuda gpu(learner_config(), start);
  cuda::KwmLinearizedCuda fresh(learner_config(), start);
  GptParameters<double> broken = start;
  broken.head.weight(0, 0) = std::numeric_limits<double>::quiet_NaN();
  gpu.set_parameters(broken);
  const TokenBatch data = testing::random_batch(model, 4, 16, 120);
  EXPECT_TRUE(gpu.step(data).skipped);
  EXPECT_EQ(gpu.skips(), 1);
  const LearnerState prior = cpu.state();
  for (std::size_t b = 0; b < gpu.block_names().size(); ++b) {
    const std::string key = gpu.block_names()[b] + ".information";
    EXPECT_EQ(relative(gpu.information(b), prior.tensors.at(key)), 0.0) << key;
  }
  gpu.set_parameters(start);
  const StepReport want = fresh.step(data);
  const StepReport have = gpu.step(data);
  EXPECT_FALSE(have.skipped);
  EXPECT_EQ(have.nll_before, want.nll_before);
  expect_same_state(gpu, fresh);
}

// A linear block whose information stays indefinite through the whole jitter schedule (the
// retries run on the learner's stream, after the batched factor failed) is skipped and left as it
// was, as the CPU learner skips it; the other blocks move as the CPU learner's do.
TEST(LmCudaKwmLinearized, IndefiniteBlockIsSkippedAfterTheJitterScheduleAsOnTheCpu) {
  KWM_REQUIRE_CUDA_DEVICE();
  const GptConfig model = small_model();
  KwmLinearizedLearner cpu(learner_config(), model, 7, LmCollectives{});
  const GptParameters<double> start = cpu.parameters();
  cuda::KwmLinearizedCuda gpu(learner_config(), start);
  const std::string bad = "blocks.0.fc";
  std::size_t index = gpu.block_names().size();
  for (std::size_t b = 0; b < gpu.block_names().size(); ++b)
    if (gpu.block_names()[b] == bad) index = b;
  ASSERT_LT(index, gpu.block_names().size());
  LearnerState state = cpu.state();
  const Eigen::Index m = state.tensors.at(bad + ".information").rows();
  const Eigen::MatrixXd indefinite = -1000.0 * Eigen::MatrixXd::Identity(m, m);
  state.tensors[bad + ".information"] = indefinite;
  cpu.restore(state);
  gpu.set_information(index, indefinite);
  const GptParameters<double> gpu_start = gpu.parameters();  // the fp32 start, as doubles
  const TokenBatch data = testing::random_batch(model, 4, 16, 125);
  EXPECT_FALSE(cpu.step(data).skipped);
  EXPECT_FALSE(gpu.step(data).skipped);
  const LearnerState cpu_after = cpu.state();
  EXPECT_EQ(cpu.block_skips(), 1);
  EXPECT_EQ(gpu.block_skips(), 1);
  EXPECT_EQ(gpu.jitter_retries(), cpu_after.counters.at("jitter_retries"));
  EXPECT_GT(gpu.jitter_retries(), 0);
  EXPECT_EQ(gpu.information(index), indefinite);
  const GptParameters<double> want_after = cpu.parameters();
  const GptParameters<double> have_after = gpu.parameters();
  const auto w = want_after.tensors();
  const auto h = have_after.tensors();
  const auto s = start.tensors();
  const auto g = gpu_start.tensors();
  for (std::size_t k = 0; k < w.size(); ++k) {
    const auto map = [](const auto& t) {
      return Eigen::Map<const Eigen::MatrixXd>(t.data, t.rows, t.cols);
    };
    if (w[k].name.rfind(bad + ".", 0) == 0) {  // the skipped block: exactly where it started
      EXPECT_EQ(map(h[k]), map(g[k])) << w[k].name;
      continue;
    }
    EXPECT_LT(relative(map(h[k]) - map(s[k]), map(w[k]) - map(s[k])), kOneStepSmallTolerance)
        << w[k].name;
  }
}

// CUDA graphs replay exactly the calls of the eager step: bit-identical parameters and
// information over batches of changing shape (each shape its own statistics graph).
TEST(LmCudaKwmLinearized, GraphsGiveTheEagerStepBitForBit) {
  KWM_REQUIRE_CUDA_DEVICE();
  const GptConfig model = small_model();
  const GptParameters<double> start = small_start();
  cuda::KwmLinearizedCuda graphed(learner_config(), start);
  cuda::KwmLinearizedCuda eager(learner_config(), start);
  eager.set_graphs(false);
  int seed = 140;
  for (const int batch : {4, 2, 4}) {
    const TokenBatch data = testing::random_batch(model, batch, 16, seed++);
    const StepReport a = graphed.step(data);
    const StepReport b = eager.step(data);
    EXPECT_EQ(a.nll_before, b.nll_before);
  }
  EXPECT_GT(graphed.graphs().captured(), 0U) << graphed.graphs().failure();
  EXPECT_EQ(eager.graphs().captured(), 0U);
  expect_same_state(graphed, eager);
  std::cout << "[ measured ] graphs: " << graphed.graphs().captured() << " captured, "
            << graphed.graphs().refused() << " refused"
            << (graphed.graphs().failure().empty() ? "" : " (" + graphed.graphs().failure() + ")")
            << "\n";
}

// Column chunks of the right-hand sides (set_solve_columns) solve the same systems as whole
// blocks: over three steps whose width changes (5: chunks and remainders of every block; 16: only
// the 24-output qkv and the 23-output head split; back to 5, whose graph and pointer arrays are
// kept), the parameters agree with the whole solves to fp32 rounding while they move by much
// more. The first step's loss is the same bit for bit (the same start); after it the two
// learners' parameters differ by rounding, so the later losses and the information (which the
// solves do not touch, but whose statistics come from those parameters) agree to the step
// tolerances.
TEST(LmCudaKwmLinearized, SolveColumnChunksAgreeWithWholeSolves) {
  KWM_REQUIRE_CUDA_DEVICE();
  const GptConfig model = small_model();
  const GptParameters<double> start = small_start();
  cuda::KwmLinearizedCuda whole(learner_config(), start);
  EXPECT_EQ(whole.solve_columns(), cuda::KwmLinearizedCuda::kDefaultSolveColumns);
  whole.set_solve_columns(0);
  cuda::KwmLinearizedCuda chunked(learner_config(), start);
  EXPECT_THROW(chunked.set_solve_columns(-1), std::invalid_argument);
  const GptParameters<double> fp32_start = whole.parameters();
  int seed = 150;
  bool first = true;
  for (const int width : {5, 16, 5}) {
    chunked.set_solve_columns(width);
    const TokenBatch data = testing::random_batch(model, 4, 16, seed++);
    const StepReport want = whole.step(data);
    const StepReport have = chunked.step(data);
    if (first) {
      EXPECT_EQ(have.nll_before, want.nll_before) << "the same start";
    }
    EXPECT_LT(std::abs(have.nll_before - want.nll_before) / want.nll_before, kStepLossTolerance);
    first = false;
  }
  EXPECT_EQ(chunked.block_skips(), 0);
  const GptParameters<double> want_after = whole.parameters();
  const GptParameters<double> have_after = chunked.parameters();
  const auto s = fp32_start.tensors();
  const auto w = want_after.tensors();
  const auto h = have_after.tensors();
  double moved = 0.0;
  for (std::size_t k = 0; k < w.size(); ++k) {
    const auto map = [](const auto& t) {
      return Eigen::Map<const Eigen::MatrixXd>(t.data, t.rows, t.cols);
    };
    const Eigen::MatrixXd want_change = map(w[k]) - map(s[k]);
    moved = std::max(moved, want_change.cwiseAbs().maxCoeff());
    EXPECT_LT(relative(map(h[k]) - map(s[k]), want_change), kStepTolerance) << w[k].name;
  }
  EXPECT_GT(moved, 1e-3) << "the steps must move the parameters for the comparison to mean much";
  for (std::size_t b = 0; b < whole.block_names().size(); ++b)
    EXPECT_LT(relative(chunked.information(b), whole.information(b)), kInformationTolerance)
        << whole.block_names()[b];
}

TEST(LmCudaKwmLinearized, PhaseTimingReportsEveryPhaseOfAStep) {
  KWM_REQUIRE_CUDA_DEVICE();
  const GptConfig model = small_model();
  cuda::KwmLinearizedCuda gpu(learner_config(), small_start());
  gpu.set_phase_timing(true);
  (void)gpu.step(testing::random_batch(model, 4, 16, 130));
  const auto& p = gpu.last_phases();
  EXPECT_TRUE(p.overlapped) << "one rank: the statistics run beside the backward pass";
  for (const double ms :
       {p.forward_ms, p.backward_ms, p.statistics_ms, p.factors_ms, p.solves_ms, p.apply_ms}) {
    EXPECT_GE(ms, 0.0);
    EXPECT_LE(ms, p.total_ms);
  }
  EXPECT_GT(p.total_ms, 0.0);
  EXPECT_GE(p.total_ms + 1e-3, p.forward_ms + p.backward_ms + p.solves_ms + p.apply_ms)
      << "the pass, the solves and the moves follow one another on the pass's stream";
  gpu.set_phase_timing(false);
  (void)gpu.step(testing::random_batch(model, 4, 16, 131));  // no timing: nothing read, no throw
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
