// Forward pass + cross entropy of a ~10.6M-parameter GPT (vocab 4096, context 256, d 256,
// 12 layers, 4 heads) in fp32: GptForwardCuda on the GPU against core/lm's Eigen forward on the
// CPU, in tokens per second of wall time. Every GPU repetition includes the token upload and the
// wait for the loss (total_nll synchronises), so it is end-to-end per batch, not kernel time
// alone. Both paths compute the same loss on the CPU batch; their relative difference is printed
// as a check that the timed work is the same.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>

#include "bench/lm_cuda/bench_support.hpp"
#include "core/lm/cross_entropy.hpp"
#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/gpt_forward.hpp"

namespace {

using Clock = std::chrono::steady_clock;

kwm::lm::GptConfig bench_config() {
  kwm::lm::GptConfig c;
  c.vocab_size = 4096;
  c.context = 256;
  c.d_model = 256;
  c.n_layers = 12;
  c.n_heads = 4;
  return c;
}

// Seconds per call of f, averaged over `reps` calls after `warmup` untimed ones.
template <typename F>
double seconds_per_call(F&& f, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) f();
  const auto start = Clock::now();
  for (int i = 0; i < reps; ++i) f();
  return std::chrono::duration<double>(Clock::now() - start).count() / reps;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int gpu_batch = 32, cpu_batch = 4, reps = 20, cpu_reps = 3;
    kwm::lm::bench::parse_flags(argc, argv,
                                {{"--gpu-batch", &gpu_batch},
                                 {"--cpu-batch", &cpu_batch},
                                 {"--reps", &reps},
                                 {"--cpu-reps", &cpu_reps}});
    if (!kwm::lm::cuda::device_available()) {
      std::fprintf(stderr, "no CUDA device visible\n");
      return 1;
    }
    const auto config = bench_config();
    const auto parameters = kwm::lm::GptParameters<float>::init(config, 1);
    const auto gpu_tokens = kwm::lm::bench::random_batch(config, gpu_batch, 2);
    const auto cpu_tokens = kwm::lm::bench::random_batch(config, cpu_batch, 3);

    kwm::lm::cuda::GptForwardCuda device(parameters);
    const double gpu_seconds =
        seconds_per_call([&] { (void)device.total_nll(gpu_tokens); }, 3, reps);
    double cpu_nll = 0.0;
    const double cpu_seconds = seconds_per_call(
        [&] {
          cpu_nll = kwm::lm::cross_entropy(kwm::lm::forward(parameters, cpu_tokens, nullptr),
                                           cpu_tokens.targets)
                        .total_nll;
        },
        1, cpu_reps);
    const double gpu_nll_on_cpu_batch = device.total_nll(cpu_tokens);

    const double gpu_rate = static_cast<double>(gpu_tokens.tokens()) / gpu_seconds;
    const double cpu_rate = static_cast<double>(cpu_tokens.tokens()) / cpu_seconds;
    std::printf(
        "GPT forward + cross entropy, fp32: vocab %d, context %d, d %d, %d layers, "
        "%d heads, %lld parameters\n",
        config.vocab_size, config.context, config.d_model, config.n_layers, config.n_heads,
        static_cast<long long>(kwm::lm::parameter_count(config)));
    std::printf("| path | batch x length | tokens | ms per batch | tokens/s |\n");
    std::printf("|---|---|---|---|---|\n");
    std::printf("| CUDA (GptForwardCuda) | %d x %d | %lld | %.3f | %.4g |\n", gpu_batch,
                config.context, static_cast<long long>(gpu_tokens.tokens()), 1e3 * gpu_seconds,
                gpu_rate);
    std::printf("| CPU fp32 (core/lm forward, Eigen, 1 thread) | %d x %d | %lld | %.1f | %.4g |\n",
                cpu_batch, config.context, static_cast<long long>(cpu_tokens.tokens()),
                1e3 * cpu_seconds, cpu_rate);
    std::printf("GPU / CPU tokens/s: %.1f\n", gpu_rate / cpu_rate);
    std::printf("check: total NLL on the CPU batch, CPU %.6f, GPU %.6f, relative difference %.2e\n",
                cpu_nll, gpu_nll_on_cpu_batch,
                std::abs(gpu_nll_on_cpu_batch - cpu_nll) / std::abs(cpu_nll));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lm_cuda_forward_bench: %s\n", e.what());
    return 2;
  }
}
