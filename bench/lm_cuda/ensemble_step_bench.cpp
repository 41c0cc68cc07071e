// One kwm-ensemble step of the ~11.6M-parameter benchmark GPT (configs/lm_gpu_10m.yaml's model:
// vocab 4096, context 256, d 256, 12 layers, 4 heads, MLP 1024, untied head with bias) with its
// forward passes on the GPU in fp32 (EnsembleCuda), in tokens per second of wall time. Learner:
// configs/lm_tiny_ensemble.yaml's settings (32 members on a rank-4 adapter of the head, r 3,
// centred q 0.003, initial std 0.1). Three timings, each the mean over --reps calls after --warmup
// untimed ones, token upload and host waits included:
//   forward+loss   GptForwardCuda::total_nll: one forward pass, what any step needs at least
//   predictions    EnsembleCuda::predict: the shared body pass, then the J members' and the mean's
//                  heads and per-token observables, copied to the host
//   step           EnsembleCuda::step: the host forecast (inflation, process noise from the CPU
//                  learner's streams), the predictions, the J x J analysis and its application
// Random tokens, GPT-2 init (seed 1).
// Run: lm_cuda_ensemble_bench [--batch B] [--reps R] [--warmup W] [--members J] [--rank r]
#include <cstdio>
#include <stdexcept>

#include "bench/lm_cuda/bench_support.hpp"
#include "bench/lm_cuda/step_baseline.hpp"
#include "core/lm/cuda/ensemble_cuda.hpp"

int main(int argc, char** argv) {
  try {
    int batch = 32, reps = 10, warmup = 2, members = 32, rank = 4;
    kwm::lm::bench::parse_flags(argc, argv,
                                {{"--batch", &batch},
                                 {"--reps", &reps},
                                 {"--warmup", &warmup},
                                 {"--members", &members},
                                 {"--rank", &rank}});
    kwm::lm::EnsembleConfig learner;  // configs/lm_tiny_ensemble.yaml
    learner.members = members;
    learner.subspace.kind = kwm::lm::SubspaceKind::lora;
    learner.subspace.blocks = 0;
    learner.subspace.rank = rank;
    learner.initial_std = 0.1;
    learner.observation = kwm::lm::EnsembleObservation::nll_residual;
    learner.observation_noise = 3.0;
    learner.process_noise = 0.003;
    learner.process_noise_mode = kwm::lm::EnsembleConfig::ProcessNoiseMode::centered;
    const kwm::lm::bench::StepBaseline base = kwm::lm::bench::step_baseline(batch, warmup, reps);
    const kwm::lm::TokenBatch& data = base.data;
    const double tokens = base.tokens, forward_s = base.forward_s;

    kwm::lm::cuda::EnsembleCuda ensemble(learner, base.config, 1);
    std::printf("%d members on lora(%d, 0): %lld coordinates\n", members, rank,
                static_cast<long long>(ensemble.subspace().dimension()));
    const Eigen::VectorXd mean = ensemble.members().rowwise().mean();
    const double predict_s = kwm::lm::bench::device_seconds_per_call(
        [&] { ensemble.predict(data, ensemble.members(), mean); }, warmup, reps);
    std::printf("predictions (body + %d heads + observables): %.3f ms, groups of %d points\n",
                members + 1, 1e3 * predict_s, ensemble.group_size());
    kwm::lm::StepReport last;
    const double step_s =
        kwm::lm::bench::device_seconds_per_call([&] { last = ensemble.step(data); }, warmup, reps);
    std::printf(
        "kwm-ensemble step: %.3f ms, %.0f tokens/s, %lld forward passes per step (prequential NLL "
        "of the last step %.4f, skipped %d; %lld steps)\n",
        1e3 * step_s, tokens / step_s, static_cast<long long>(last.forward_passes), last.nll_before,
        last.skipped ? 1 : 0, static_cast<long long>(ensemble.steps()));
    std::printf("step minus predictions (host forecast and analysis): %.3f ms\n",
                1e3 * (step_s - predict_s));
    std::printf(
        "RESULT kwm-ensemble batch=%d members=%d tokens=%.0f forward_ms=%.3f predict_ms=%.3f "
        "step_ms=%.3f step_tok_s=%.0f forward_passes=%lld\n",
        batch, members, tokens, 1e3 * forward_s, 1e3 * predict_s, 1e3 * step_s, tokens / step_s,
        static_cast<long long>(last.forward_passes));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lm_cuda_ensemble_bench: %s\n", e.what());
    return 1;
  }
}
