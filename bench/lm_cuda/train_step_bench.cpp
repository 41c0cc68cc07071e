// One KWM-linearized training step of the ~11.6M-parameter benchmark GPT (configs/lm_gpu_10m.yaml:
// vocab 4096, context 256, d 256, 12 layers, 4 heads, MLP 1024, untied head with bias) on the GPU
// in fp32, in tokens per second of wall time: the forward + transposed-Jacobian pass alone
// (GptTransposeCuda::run) and the whole step (KwmLinearizedCuda::step: that pass, every block's
// statistics, Cholesky solves and updates). Each timed call includes the token upload and the
// host waits the step itself makes; the clock stops after a device synchronise. Random tokens,
// GPT-2 init (seed 1). The PyTorch counterpart is bench/lm_cuda/torch_gpt_step.py.
// Run: lm_cuda_train_bench [--batch B] [--reps R] [--breakdown 1] [--tensor-math fp32|tf32]
//                          [--statistics-math fp32|tf32|bf16] [--phases 1] [--graphs on|off]
//                          [--skip-pass 1] [--solve-columns W|whole]
// (breakdown: the learner's SSYRK/SGEMM/potrf/potrs pieces alone at the batch's shapes;
// tensor-math: the GPT pass's GEMMs in fp32, the default, or on TF32 tensor cores, in both the
// pass and the step; statistics-math: the same for the learner's x x^T products, or on bfloat16
// copies of their inputs (bf16), whose factors and solves stay fp32 (core/lm/cuda/tensor_math.hpp);
// phases: after the timed calls, R more steps with KwmLinearizedCuda's event timing on, their mean
// device time per phase; graphs: the step's fixed call sequences replayed as CUDA graphs, the
// default, or queued call by call; skip-pass 1: the pass is not timed alone, and its RESULT fields
// read 0; solve-columns: the triangular solves' right-hand sides in chunks of at most W columns,
// each a batch entry, or whole (KwmLinearizedCuda::set_solve_columns; without the flag the
// learner's default, 128; RESULT prints 0 for whole))
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench/lm_cuda/bench_support.hpp"
#include "bench/lm_cuda/step_arithmetic.hpp"
#include "core/backend/cuda/blas_dispatch.hpp"
#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/cuda/gpt_transpose_cuda.hpp"
#include "core/lm/cuda/kwm_linearized_cuda.hpp"
#include "core/lm/cuda/tensor_math.hpp"

namespace {

// Milliseconds per call of `queue` (device work on `stream`), by CUDA events over `reps` calls.
template <typename F>
double event_ms(cudaStream_t stream, F&& queue, int reps) {
  queue();
  cudaEvent_t start = nullptr, stop = nullptr;
  KWM_CUDA_CHECK(cudaEventCreate(&start));
  KWM_CUDA_CHECK(cudaEventCreate(&stop));
  KWM_CUDA_CHECK(cudaEventRecord(start, stream));
  for (int i = 0; i < reps; ++i) queue();
  KWM_CUDA_CHECK(cudaEventRecord(stop, stream));
  KWM_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0.0f;
  KWM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return static_cast<double>(ms) / reps;
}

// The learner's per-block pieces at the benchmark's shapes, alone: the second moment by SSYRK
// and by SGEMM, and the Cholesky factor and solve (cuSOLVER), to say where a step's time goes.
void breakdown(std::int64_t columns) {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cusolverDnHandle_t solver = nullptr;
  KWM_CUDA_CHECK(cudaStreamCreate(&stream));
  KWM_CUBLAS_CHECK(cublasCreate(&blas));
  KWM_CUBLAS_CHECK(cublasSetStream(blas, stream));
  KWM_CUSOLVER_CHECK(cusolverDnCreate(&solver));
  KWM_CUSOLVER_CHECK(cusolverDnSetStream(solver, stream));
  const float one = 1.0f, zero = 0.0f;
  for (const std::int64_t d : {256, 1024}) {
    kwm::lm::cuda::DeviceBuffer<float> x(static_cast<std::size_t>(d * columns));
    kwm::lm::cuda::DeviceBuffer<float> c(static_cast<std::size_t>(d * d));
    std::vector<float> host(static_cast<std::size_t>(d * columns));
    std::mt19937_64 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : host) v = normal(rng);
    KWM_CUDA_CHECK(
        cudaMemcpy(x.data(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
    const double syrk = event_ms(
        stream,
        [&] {
          KWM_CUBLAS_CHECK(kwm::cuda_detail::syrk(blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, d,
                                                  columns, &one, x.data(), d, &zero, c.data(), d));
        },
        10);
    const double gemm = event_ms(
        stream,
        [&] {
          KWM_CUBLAS_CHECK(kwm::cuda_detail::gemm(blas, CUBLAS_OP_N, CUBLAS_OP_T, d, d, columns,
                                                  &one, x.data(), d, x.data(), d, &zero, c.data(),
                                                  d));
        },
        10);
    std::printf("breakdown: x x^T, %lld x %lld: SSYRK %.3f ms, SGEMM %.3f ms\n",
                static_cast<long long>(d), static_cast<long long>(columns), syrk, gemm);
  }
  for (const auto& [n, rhs] : {std::pair<int, int>{257, 768}, {257, 4096}, {1025, 256}}) {
    std::vector<float> host(static_cast<std::size_t>(n) * static_cast<std::size_t>(n), 0.0f);
    std::mt19937_64 rng(4);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int i = 0; i < n; ++i)
      host[static_cast<std::size_t>(i) * static_cast<std::size_t>(n + 1)] =
          static_cast<float>(n) + normal(rng);
    kwm::lm::cuda::DeviceBuffer<float> a(host.size()), f(host.size());
    kwm::lm::cuda::DeviceBuffer<float> b(static_cast<std::size_t>(n) *
                                         static_cast<std::size_t>(rhs));
    KWM_CUDA_CHECK(
        cudaMemcpy(a.data(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
    KWM_CUDA_CHECK(cudaMemset(b.data(), 0, b.capacity() * sizeof(float)));
    int size = 0;
    KWM_CUSOLVER_CHECK(
        cusolverDnSpotrf_bufferSize(solver, CUBLAS_FILL_MODE_LOWER, n, f.data(), n, &size));
    kwm::lm::cuda::DeviceBuffer<float> work(static_cast<std::size_t>(std::max(size, 1)));
    kwm::lm::cuda::DeviceBuffer<int> info(1);
    const double potrf = event_ms(
        stream,
        [&] {
          KWM_CUDA_CHECK(cudaMemcpyAsync(f.data(), a.data(), host.size() * sizeof(float),
                                         cudaMemcpyDeviceToDevice, stream));
          KWM_CUSOLVER_CHECK(cusolverDnSpotrf(solver, CUBLAS_FILL_MODE_LOWER, n, f.data(), n,
                                              work.data(), std::max(size, 1), info.data()));
        },
        10);
    const double potrs = event_ms(
        stream,
        [&] {
          KWM_CUSOLVER_CHECK(cusolverDnSpotrs(solver, CUBLAS_FILL_MODE_LOWER, n, rhs, f.data(), n,
                                              b.data(), n, info.data()));
        },
        10);
    const double trsm = event_ms(
        stream,
        [&] {
          for (const cublasOperation_t op : {CUBLAS_OP_N, CUBLAS_OP_T}) {
            KWM_CUBLAS_CHECK(kwm::cuda_detail::trsm(blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER,
                                                    op, CUBLAS_DIAG_NON_UNIT, n, rhs, &one,
                                                    f.data(), n, b.data(), n));
          }
        },
        10);
    std::printf(
        "breakdown: n %d: copy + potrf %.3f ms; %d right-hand sides: potrs %.3f ms, two STRSM "
        "%.3f ms\n",
        n, potrf, rhs, potrs, trsm);
  }
  // The 37 factorizations of size 257 of one step (qkv, attn_out, fc per layer, the head): one
  // after another against one batched call.
  {
    const int n = 257, count = 37;
    const auto size = static_cast<std::size_t>(n) * static_cast<std::size_t>(n);
    std::vector<float> host(size, 0.0f);
    for (int i = 0; i < n; ++i)
      host[static_cast<std::size_t>(i) * static_cast<std::size_t>(n + 1)] = static_cast<float>(n);
    kwm::lm::cuda::DeviceBuffer<float> a(size), f(size * count);
    KWM_CUDA_CHECK(cudaMemcpy(a.data(), host.data(), size * sizeof(float), cudaMemcpyHostToDevice));
    std::vector<float*> pointers;
    for (int k = 0; k < count; ++k)
      pointers.push_back(f.data() + static_cast<std::size_t>(k) * size);
    kwm::lm::cuda::DeviceBuffer<float*> device_pointers(pointers.size());
    KWM_CUDA_CHECK(cudaMemcpy(device_pointers.data(), pointers.data(),
                              pointers.size() * sizeof(float*), cudaMemcpyHostToDevice));
    kwm::lm::cuda::DeviceBuffer<int> info(static_cast<std::size_t>(count));
    int work_size = 0;
    KWM_CUSOLVER_CHECK(
        cusolverDnSpotrf_bufferSize(solver, CUBLAS_FILL_MODE_LOWER, n, f.data(), n, &work_size));
    kwm::lm::cuda::DeviceBuffer<float> work(static_cast<std::size_t>(std::max(work_size, 1)));
    const auto reset = [&] {
      for (int k = 0; k < count; ++k) {
        KWM_CUDA_CHECK(cudaMemcpyAsync(pointers[static_cast<std::size_t>(k)], a.data(),
                                       size * sizeof(float), cudaMemcpyDeviceToDevice, stream));
      }
    };
    const double copies = event_ms(stream, reset, 5);
    const double sequential = event_ms(
        stream,
        [&] {
          reset();
          for (int k = 0; k < count; ++k) {
            KWM_CUSOLVER_CHECK(cusolverDnSpotrf(
                solver, CUBLAS_FILL_MODE_LOWER, n, pointers[static_cast<std::size_t>(k)], n,
                work.data(), std::max(work_size, 1), info.data() + k));
          }
        },
        5);
    const double batched = event_ms(
        stream,
        [&] {
          reset();
          KWM_CUSOLVER_CHECK(cusolverDnSpotrfBatched(
              solver, CUBLAS_FILL_MODE_LOWER, n, device_pointers.data(), n, info.data(), count));
        },
        5);
    std::printf(
        "breakdown: %d potrf of n %d: one by one %.3f ms, batched %.3f ms (copies %.3f ms "
        "included in both)\n",
        count, n, sequential, batched, copies);
  }
  cusolverDnDestroy(solver);
  cublasDestroy(blas);
  cudaStreamDestroy(stream);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int batch = 32, reps = 10, with_breakdown = 0, with_phases = 0, skip_pass = 0;
    std::string solve_columns_text;
    std::string graphs_text = "on";
    std::string math_text = "fp32", statistics_text = "fp32";
    kwm::lm::bench::parse_flags(argc, argv,
                                {{"--batch", &batch},
                                 {"--reps", &reps},
                                 {"--breakdown", &with_breakdown},
                                 {"--phases", &with_phases},
                                 {"--skip-pass", &skip_pass}},
                                {{"--tensor-math", &math_text},
                                 {"--statistics-math", &statistics_text},
                                 {"--graphs", &graphs_text},
                                 {"--solve-columns", &solve_columns_text}});
    if (graphs_text != "on" && graphs_text != "off")
      throw std::invalid_argument("--graphs must be on or off; got '" + graphs_text + "'");
    const int with_graphs = graphs_text == "on" ? 1 : 0;
    const auto math = kwm::lm::cuda::parse_tensor_math(math_text, "--tensor-math");
    const auto statistics_math =
        kwm::lm::cuda::parse_tensor_math(statistics_text, "--statistics-math", true);
    if (!kwm::lm::cuda::device_available()) throw std::runtime_error("no CUDA device visible");
    const kwm::lm::GptConfig config = kwm::lm::bench::lm_gpu_10m_model();
    const auto start = kwm::lm::GptParameters<double>::init(config, 1);
    const kwm::lm::TokenBatch data = kwm::lm::bench::random_batch(config, batch, 2);
    const double tokens = static_cast<double>(data.tokens());
    const char* math_name = kwm::lm::cuda::tensor_math_name(math);
    const char* statistics_name = kwm::lm::cuda::tensor_math_name(statistics_math);
    std::printf(
        "model: %lld parameters; batch %d x %d = %.0f tokens; pass GEMMs %s, statistics GEMMs %s\n",
        static_cast<long long>(start.size()), batch, config.context, tokens, math_name,
        statistics_name);

    const kwm::lm::bench::StepArithmetic work =
        kwm::lm::bench::step_arithmetic(config, data.tokens());
    std::printf(
        "arithmetic per step (GFLOP, 2 per multiply-add, as the step computes it): forward %.1f, "
        "transposed pass %.1f, statistics %.1f, factors %.1f, solves %.1f; kwm step %.1f; an "
        "AdamW step's forward + backward GEMMs %.1f, so %.3fx AdamW's tokens/s at equal FLOP "
        "rates\n",
        1e-9 * work.forward, 1e-9 * work.transposed, 1e-9 * work.statistics, 1e-9 * work.factors,
        1e-9 * work.solves, 1e-9 * work.kwm(), 1e-9 * work.adamw, work.adamw / work.kwm());

    // --skip-pass 1 leaves the pass alone out, so that a kernel profile (profile_step_device.sh)
    // holds the step's launches only.
    double pass_s = 0.0;
    if (skip_pass == 0) {
      kwm::lm::cuda::GptTransposeCuda pass(start.cast<float>());
      pass.set_tensor_math(math);
      double nll = 0.0;
      pass_s = kwm::lm::bench::device_seconds_per_call([&] { nll = pass.run(data); }, 2, reps);
      std::printf("forward+transpose: %.3f ms, %.0f tokens/s, %.1f TFLOP/s (mean NLL %.4f)\n",
                  1e3 * pass_s, tokens / pass_s, 1e-12 * work.adamw / pass_s, nll / tokens);
    }

    kwm::lm::KwmLinearizedConfig learner;  // the defaults of configs/lm_gpu_10m.yaml
    learner.initial_variance = 1.0;
    learner.forgetting = 0.999;
    learner.noise_variance = 1.0;
    kwm::lm::cuda::KwmLinearizedCuda kwm(learner, start);
    kwm.set_tensor_math(math);
    kwm.set_statistics_math(statistics_math);
    kwm.set_graphs(with_graphs != 0);
    if (solve_columns_text == "whole")
      kwm.set_solve_columns(0);
    else if (!solve_columns_text.empty())
      kwm.set_solve_columns(
          kwm::lm::bench::positive_int(solve_columns_text.c_str(), "--solve-columns"));
    const int solve_columns = static_cast<int>(kwm.solve_columns());
    kwm::lm::StepReport last;
    const double step_s =
        kwm::lm::bench::device_seconds_per_call([&] { last = kwm.step(data); }, 2, reps);
    std::printf(
        "kwm-linearized step: %.3f ms, %.0f tokens/s (last NLL before %.4f, block skips %lld, "
        "jitter retries %lld)\n",
        1e3 * step_s, tokens / step_s, last.nll_before, static_cast<long long>(kwm.block_skips()),
        static_cast<long long>(kwm.jitter_retries()));
    std::printf(
        "RESULT kwm math=%s statistics=%s graphs=%d solve_columns=%d batch=%d tokens=%.0f "
        "pass_ms=%.3f pass_tok_s=%.0f step_ms=%.3f step_tok_s=%.0f\n",
        math_name, statistics_name, with_graphs, solve_columns, batch, tokens, 1e3 * pass_s,
        pass_s > 0.0 ? tokens / pass_s : 0.0, 1e3 * step_s, tokens / step_s);
    if (with_graphs != 0)
      std::printf("graphs: %zu captured, %zu refused %s\n", kwm.graphs().captured(),
                  kwm.graphs().refused(), kwm.graphs().failure().c_str());
    if (with_phases != 0) {
      kwm.set_phase_timing(true);
      kwm::lm::cuda::KwmLinearizedCuda::Phases sum;
      for (int r = 0; r < reps; ++r) {
        (void)kwm.step(data);
        const auto& p = kwm.last_phases();
        sum.overlapped = p.overlapped;
        sum.forward_ms += p.forward_ms / reps;
        sum.backward_ms += p.backward_ms / reps;
        sum.statistics_ms += p.statistics_ms / reps;
        sum.factors_ms += p.factors_ms / reps;
        sum.solves_ms += p.solves_ms / reps;
        sum.apply_ms += p.apply_ms / reps;
        sum.total_ms += p.total_ms / reps;
      }
      kwm.set_phase_timing(false);
      std::printf(
          "phases (device ms, mean of %d timed steps; statistics and factors %s): forward %.3f, "
          "backward %.3f, statistics %.3f, factors %.3f, solves %.3f, apply %.3f, total %.3f\n",
          reps, sum.overlapped ? "beside the backward pass" : "after the pass", sum.forward_ms,
          sum.backward_ms, sum.statistics_ms, sum.factors_ms, sum.solves_ms, sum.apply_ms,
          sum.total_ms);
      const auto rate = [](double flop, double ms) { return ms > 0.0 ? 1e-9 * flop / ms : 0.0; };
      std::printf(
          "phase FLOP rates (TFLOP/s): forward %.1f, statistics %.1f, factors %.1f, solves %.1f; "
          "the whole step %.1f\n",
          rate(work.forward, sum.forward_ms), rate(work.statistics, sum.statistics_ms),
          rate(work.factors, sum.factors_ms), rate(work.solves, sum.solves_ms),
          rate(work.kwm(), sum.total_ms));
    }
    if (with_breakdown != 0) breakdown(data.tokens());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lm_cuda_train_bench: %s\n", e.what());
    return 1;
  }
}
