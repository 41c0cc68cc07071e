// One KWM-linearized training step of the ~11.6M-parameter benchmark GPT (configs/lm_gpu_10m.yaml:
// vocab 4096, context 256, d 256, 12 layers, 4 heads, MLP 1024, untied head with bias) on the GPU
// in fp32, in tokens per second of wall time: the forward + transposed-Jacobian pass alone
// (GptTransposeCuda::run) and the whole step (KwmLinearizedCuda::step: that pass, every block's
// statistics, Cholesky solves and updates). Each timed call includes the token upload and the
// host waits the step itself makes; the clock stops after a device synchronise. Random tokens,
// GPT-2 init (seed 1). The PyTorch counterpart is bench/lm_cuda/torch_gpt_step.py.
// Run: lm_cuda_train_bench [--batch B] [--reps R]
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/cuda/gpt_transpose_cuda.hpp"
#include "core/lm/cuda/kwm_linearized_cuda.hpp"

namespace {

using Clock = std::chrono::steady_clock;

kwm::lm::GptConfig bench_config() {
  kwm::lm::GptConfig c;
  c.vocab_size = 4096;
  c.context = 256;
  c.d_model = 256;
  c.n_layers = 12;
  c.n_heads = 4;
  c.tied_head = false;
  c.head_bias = true;
  return c;
}

kwm::lm::TokenBatch random_batch(const kwm::lm::GptConfig& config, int batch, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int32_t> token(0, config.vocab_size - 1);
  kwm::lm::TokenBatch b;
  b.batch = batch;
  b.length = config.context;
  for (std::int64_t n = 0; n < b.tokens(); ++n) {
    b.inputs.push_back(token(rng));
    b.targets.push_back(token(rng));
  }
  return b;
}

int positive_int(const char* text, const std::string& flag) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value <= 0 || value > 1'000'000) {
    throw std::invalid_argument(flag + " needs a positive integer; got '" + text + "'");
  }
  return static_cast<int>(value);
}

// Seconds per call of f (device synchronised at the end), after `warmup` untimed calls.
template <typename F>
double seconds_per_call(F&& f, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) f();
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
  const auto start = Clock::now();
  for (int i = 0; i < reps; ++i) f();
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
  return std::chrono::duration<double>(Clock::now() - start).count() / reps;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int batch = 32, reps = 10;
    for (int i = 1; i < argc; ++i) {
      const std::string flag = argv[i];
      if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
      const int value = positive_int(argv[++i], flag);
      if (flag == "--batch") {
        batch = value;
      } else if (flag == "--reps") {
        reps = value;
      } else {
        throw std::invalid_argument("unknown flag " + flag + " (use --batch, --reps)");
      }
    }
    if (!kwm::lm::cuda::device_available()) throw std::runtime_error("no CUDA device visible");
    const kwm::lm::GptConfig config = bench_config();
    const auto start = kwm::lm::GptParameters<double>::init(config, 1);
    const kwm::lm::TokenBatch data = random_batch(config, batch, 2);
    const double tokens = static_cast<double>(data.tokens());
    std::printf("model: %lld parameters; batch %d x %d = %.0f tokens\n",
                static_cast<long long>(start.size()), batch, config.context, tokens);

    kwm::lm::cuda::GptTransposeCuda pass(start.cast<float>());
    double nll = 0.0;
    const double pass_s = seconds_per_call([&] { nll = pass.run(data); }, 2, reps);
    std::printf("forward+transpose: %.3f ms, %.0f tokens/s (mean NLL %.4f)\n", 1e3 * pass_s,
                tokens / pass_s, nll / tokens);

    kwm::lm::KwmLinearizedConfig learner;  // the defaults of configs/lm_gpu_10m.yaml
    learner.initial_variance = 1.0;
    learner.forgetting = 0.999;
    learner.noise_variance = 1.0;
    kwm::lm::cuda::KwmLinearizedCuda kwm(learner, start);
    kwm::lm::StepReport last;
    const double step_s = seconds_per_call([&] { last = kwm.step(data); }, 2, reps);
    std::printf(
        "kwm-linearized step: %.3f ms, %.0f tokens/s (last NLL before %.4f, block skips %lld, "
        "jitter retries %lld)\n",
        1e3 * step_s, tokens / step_s, last.nll_before, static_cast<long long>(kwm.block_skips()),
        static_cast<long long>(kwm.jitter_retries()));
    std::printf(
        "RESULT kwm batch=%d tokens=%.0f pass_ms=%.3f pass_tok_s=%.0f step_ms=%.3f "
        "step_tok_s=%.0f\n",
        batch, tokens, 1e3 * pass_s, tokens / pass_s, 1e3 * step_s, tokens / step_s);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lm_cuda_train_bench: %s\n", e.what());
    return 1;
  }
}
