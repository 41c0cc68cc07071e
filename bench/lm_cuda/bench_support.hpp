// What the GPU language-model benchmarks share: the model they time, a batch of uniformly random
// tokens filling the context, a timer that waits for the device, and the check of a positive
// integer flag.
#pragma once

#include <cuda_runtime.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <random>
#include <stdexcept>
#include <string>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/gpt_config.hpp"
#include "core/lm/token_batch.hpp"

namespace kwm::lm::bench {

// The model of configs/lm_gpu_10m.yaml (11,644,416 parameters): vocab 4096, context 256, d 256,
// 12 layers, 4 heads, untied head with bias.
inline GptConfig lm_gpu_10m_model() {
  GptConfig c;
  c.vocab_size = 4096;
  c.context = 256;
  c.d_model = 256;
  c.n_layers = 12;
  c.n_heads = 4;
  c.tied_head = false;
  c.head_bias = true;
  return c;
}

// Seconds per call of f, the device synchronised before and after the timed calls, after
// `warmup` untimed calls.
template <typename F>
double device_seconds_per_call(F&& f, int warmup, int reps) {
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < warmup; ++i) f();
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
  const auto start = Clock::now();
  for (int i = 0; i < reps; ++i) f();
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
  return std::chrono::duration<double>(Clock::now() - start).count() / reps;
}

// `batch` sequences of `config.context` tokens, inputs and targets drawn independently.
inline TokenBatch random_batch(const GptConfig& config, int batch, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int32_t> token(0, config.vocab_size - 1);
  TokenBatch b;
  b.batch = batch;
  b.length = config.context;
  for (std::int64_t n = 0; n < b.tokens(); ++n) {
    b.inputs.push_back(token(rng));
    b.targets.push_back(token(rng));
  }
  return b;
}

// The value of `flag`, in 1 .. 1,000,000, or std::invalid_argument naming the flag.
inline int positive_int(const char* text, const std::string& flag) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value <= 0 || value > 1'000'000) {
    throw std::invalid_argument(flag + " needs a positive integer; got '" + text + "'");
  }
  return static_cast<int>(value);
}

// Reads the command line as `--flag value` pairs: a flag of `ints` takes a positive integer
// (positive_int), a flag of `texts` any string. std::invalid_argument for a flag without a value
// or one of neither map (the message lists the known flags).
inline void parse_flags(int argc, char** argv, const std::map<std::string, int*>& ints,
                        const std::map<std::string, std::string*>& texts = {}) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
    const char* value = argv[++i];
    if (const auto t = texts.find(flag); t != texts.end()) {
      *t->second = value;
    } else if (const auto n = ints.find(flag); n != ints.end()) {
      *n->second = positive_int(value, flag);
    } else {
      std::string known;
      for (const auto& [name, target] : ints) known += (known.empty() ? "" : ", ") + name;
      for (const auto& [name, target] : texts) known += (known.empty() ? "" : ", ") + name;
      throw std::invalid_argument("unknown flag " + flag + " (use " + known + ")");
    }
  }
}

}  // namespace kwm::lm::bench
