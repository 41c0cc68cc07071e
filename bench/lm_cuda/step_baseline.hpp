// What a learner's step benchmark compares its step with: the benchmark GPT at the learners' start
// (GptParameters::init(model, 1)), a random batch (seed 2) and the fp32 forward pass and loss of
// that start on that batch (GptForwardCuda::total_nll), timed as the step is. The step benchmarks
// report "step minus forward" against it.
#pragma once

#include <cstdio>
#include <stdexcept>

#include "bench/lm_cuda/bench_support.hpp"
#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/gpt_parameters.hpp"

namespace kwm::lm::bench {

struct StepBaseline {
  GptConfig config;
  GptParameters<double> start;
  TokenBatch data;
  double tokens = 0.0;
  double forward_s = 0.0;  // seconds per forward + loss call
};

// Throws std::runtime_error when no CUDA device is visible. Prints the model and forward lines.
inline StepBaseline step_baseline(int batch, int warmup, int reps) {
  if (!cuda::device_available()) throw std::runtime_error("no CUDA device visible");
  StepBaseline b;
  b.config = lm_gpu_10m_model();
  b.start = GptParameters<double>::init(b.config, 1);
  b.data = random_batch(b.config, batch, 2);
  b.tokens = static_cast<double>(b.data.tokens());
  std::printf("model: %lld parameters (head %lld); batch %d x %d = %.0f tokens\n",
              static_cast<long long>(b.start.size()),
              static_cast<long long>(b.start.head.weight.size() + b.start.head.bias.size()), batch,
              b.config.context, b.tokens);
  cuda::GptForwardCuda forward(b.start.cast<float>());
  double total = 0.0;
  b.forward_s = device_seconds_per_call([&] { total = forward.total_nll(b.data); }, warmup, reps);
  std::printf("forward+loss: %.3f ms, %.0f tokens/s (mean NLL %.4f)\n", 1e3 * b.forward_s,
              b.tokens / b.forward_s, total / b.tokens);
  return b;
}

}  // namespace kwm::lm::bench
