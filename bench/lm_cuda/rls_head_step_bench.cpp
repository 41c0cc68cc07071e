// One rls-head training step of the ~11.6M-parameter benchmark GPT (configs/lm_gpu_10m.yaml's
// model: vocab 4096, context 256, d 256, 12 layers, 4 heads, MLP 1024, untied head with bias) on
// the GPU in fp32, in tokens per second of wall time: the forward pass and loss alone
// (GptForwardCuda::total_nll, what every step needs at least) and the whole step
// (RlsHeadCuda::step: the forward pass, the innovation, pbar, A and (G^-1 D)^T, the Cholesky
// factor and solve of size d + 1 = 257 with vocab right-hand sides, the head update). Each timed
// call includes the token upload and the step's host wait; the clock stops after a device
// synchronise. Random tokens, GPT-2 init (seed 1), learner defaults (RlsHeadConfig: initial
// variance 1, forgetting 1, delta 0.01, probability EMA 0.999). The PyTorch counterpart (AdamW on
// the same model and batch) is bench/lm_cuda/torch_gpt_step.py.
// Run: lm_cuda_rls_head_bench [--batch B] [--reps R] [--warmup W]
#include <cstdio>
#include <stdexcept>

#include "bench/lm_cuda/bench_support.hpp"
#include "bench/lm_cuda/step_baseline.hpp"
#include "core/lm/cuda/rls_head_cuda.hpp"

int main(int argc, char** argv) {
  try {
    int batch = 32, reps = 10, warmup = 2;
    kwm::lm::bench::parse_flags(argc, argv,
                                {{"--batch", &batch}, {"--reps", &reps}, {"--warmup", &warmup}});
    const kwm::lm::bench::StepBaseline base = kwm::lm::bench::step_baseline(batch, warmup, reps);
    const double tokens = base.tokens, forward_s = base.forward_s;

    const kwm::lm::RlsHeadConfig learner;  // the defaults
    kwm::lm::cuda::RlsHeadCuda rls(learner, base.start);
    kwm::lm::StepReport last;
    const double step_s =
        kwm::lm::bench::device_seconds_per_call([&] { last = rls.step(base.data); }, warmup, reps);
    std::printf(
        "rls-head step: %.3f ms, %.0f tokens/s (prequential NLL of the last step %.4f; %lld "
        "steps, %lld skipped, %lld jitter retries)\n",
        1e3 * step_s, tokens / step_s, last.nll_before, static_cast<long long>(rls.steps()),
        static_cast<long long>(rls.skips()), static_cast<long long>(rls.jitter_retries()));
    std::printf("step minus forward: %.3f ms\n", 1e3 * (step_s - forward_s));
    std::printf(
        "RESULT rls-head batch=%d tokens=%.0f forward_ms=%.3f forward_tok_s=%.0f step_ms=%.3f "
        "step_tok_s=%.0f\n",
        batch, tokens, 1e3 * forward_s, tokens / forward_s, 1e3 * step_s, tokens / step_s);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lm_cuda_rls_head_bench: %s\n", e.what());
    return 1;
  }
}
