// One mezo training step of the ~11.6M-parameter benchmark GPT (configs/lm_gpu_10m.yaml's model)
// on the GPU in fp32, in tokens per second of wall time: the forward pass and loss alone
// (GptForwardCuda::total_nll) and the whole step (MezoCudaLearner::step on every parameter: two
// perturbed points written from the counter-based z, two forward passes, the fp64 update along z).
// A step is two forward passes plus three sweeps over the 11.6M coordinates, so "step minus two
// forwards" is what MeZO adds to the passes. Each timed call includes the token upload and the
// host waits; the clock stops after a device synchronise. Random tokens, seed 1; eps 1e-3, rate
// 1e-4 (the sample-efficiency run's). The PyTorch counterpart is torch_gpt_step.py's
// mezo-fp32-eager. --head-subspace 1 perturbs ln_f and the head only (subspace: head), whose second
// point reuses the first one's body (GptForwardCuda::head_total_nll).
// Run: lm_cuda_mezo_bench [--batch B] [--reps R] [--warmup W] [--head-subspace 0|1]
#include <cstdio>
#include <stdexcept>

#include "bench/lm_cuda/bench_support.hpp"
#include "bench/lm_cuda/step_baseline.hpp"
#include "core/lm/cuda/mezo_cuda_learner.hpp"

int main(int argc, char** argv) {
  try {
    int batch = 32, reps = 20, warmup = 3, head = 0;
    kwm::lm::bench::parse_flags(argc, argv,
                                {{"--batch", &batch},
                                 {"--reps", &reps},
                                 {"--warmup", &warmup},
                                 {"--head-subspace", &head}});
    const kwm::lm::bench::StepBaseline base = kwm::lm::bench::step_baseline(batch, warmup, reps);
    const double tokens = base.tokens, forward_s = base.forward_s;

    kwm::lm::MezoConfig learner;
    learner.schedule.learning_rate = 1e-4;
    learner.epsilon = 1e-3;
    if (head != 0) learner.subspace.kind = kwm::lm::SubspaceKind::head;
    kwm::lm::cuda::MezoCudaLearner mezo(learner, base.config, 1);
    kwm::lm::StepReport last;
    const double step_s =
        kwm::lm::bench::device_seconds_per_call([&] { last = mezo.step(base.data); }, warmup, reps);
    std::printf("mezo step: %.3f ms, %.0f tokens/s (loss at theta %.4f, projected gradient %.4g)\n",
                1e3 * step_s, tokens / step_s, last.nll_before, mezo.last_projected_gradient());
    std::printf("step minus two forwards: %.3f ms\n", 1e3 * (step_s - 2.0 * forward_s));
    std::printf(
        "RESULT mezo batch=%d subspace=%s tokens=%.0f forward_ms=%.3f step_ms=%.3f "
        "step_tok_s=%.0f\n",
        batch, head != 0 ? "head" : "all", tokens, 1e3 * forward_s, 1e3 * step_s, tokens / step_s);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lm_cuda_mezo_bench: %s\n", e.what());
    return 1;
  }
}
