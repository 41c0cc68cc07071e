// The shape the GPU learners' cross-device checkpoint tests share: a CPU and a GPU learner from
// the same seed take the first steps, and their states restore fresh learners on the other device
// (GPU -> CPU, CPU -> GPU) and on the same one (GPU -> GPU). Each test then checks the restores,
// steps the learners on (step_on) and compares them with the uninterrupted runs with its own
// measures and bounds.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <utility>

#include "core/lm/gpt_parameters.hpp"
#include "core/lm/learners/language_learner.hpp"
#include "core/lm/token_batch.hpp"

namespace kwm::lm::testing {

using MakeLearner = std::function<std::unique_ptr<LanguageLearner>()>;
using MakeBatch = std::function<TokenBatch(int)>;

struct CrossDeviceCheckpoints {
  MakeBatch batch;
  int steps = 0;  // batches 0 .. steps-1 before the checkpoint, steps .. 2 steps-1 after it
  GptParameters<double> start;                // the CPU learner's parameters before the first step
  LearnerState start_state;                   // and its state
  std::unique_ptr<LanguageLearner> cpu, gpu;  // the uninterrupted runs
  LearnerState cpu_half, gpu_half;            // their states after the first steps
  std::unique_ptr<LanguageLearner> cpu_from_gpu, gpu_from_cpu, gpu_from_gpu;

  // Steps each learner through the batches after the checkpoint, batch by batch.
  void step_on(std::initializer_list<LanguageLearner*> learners) const {
    for (int s = steps; s < 2 * steps; ++s)
      for (LanguageLearner* learner : learners) learner->step(batch(s));
  }
};

// Runs the first `steps` batches on a CPU and a GPU learner and restores their states into fresh
// learners: the GPU state into a CPU one (cpu_from_gpu) and a GPU one (gpu_from_gpu), the CPU
// state into a GPU one (gpu_from_cpu).
inline CrossDeviceCheckpoints checkpoint_across_devices(const MakeLearner& make_cpu,
                                                        const MakeLearner& make_gpu,
                                                        MakeBatch batch, int steps) {
  CrossDeviceCheckpoints c;
  c.batch = std::move(batch);
  c.steps = steps;
  c.cpu = make_cpu();
  c.gpu = make_gpu();
  c.start = c.cpu->parameters();
  c.start_state = c.cpu->state();
  for (int s = 0; s < steps; ++s) {
    c.cpu->step(c.batch(s));
    c.gpu->step(c.batch(s));
  }
  c.cpu_half = c.cpu->state();
  c.gpu_half = c.gpu->state();
  c.cpu_from_gpu = make_cpu();
  c.cpu_from_gpu->restore(c.gpu_half);
  c.gpu_from_cpu = make_gpu();
  c.gpu_from_cpu->restore(c.cpu_half);
  c.gpu_from_gpu = make_gpu();
  c.gpu_from_gpu->restore(c.gpu_half);
  return c;
}

}  // namespace kwm::lm::testing
