// Shared-row blocks (ALGORITHMS.md section 4) through SharedRowRls: the per-sample RLS update,
// and the batched form split into its two costs, accumulating a batch of statistics and
// applying them (Cholesky of L and W = B L^-1), which a run may do every k batches.
// Square layers: d_out = d_in = d, so W costs as much memory traffic as P.
#include <benchmark/benchmark.h>

#include <string>

#include "bench/cpu/bench_support.hpp"
#include "bench/cpu/benchmarks.hpp"
#include "bench/cpu/work_model.hpp"
#include "core/kalman/shared_row_rls.hpp"

namespace kwm::bench {
namespace {

constexpr Index kBatch = 256;  // samples per accumulate call

// lambda = 1 (no forgetting): with lambda < 1 and the same input every iteration P would wind up
// in the unexcited directions; the 1/lambda rescale it would add is one more read+write of P.
template <typename T>
void rls_sample(benchmark::State& state, Index d) {
  auto backend = make_backend<T>("cpu");
  const Tensor<T> weights = random_matrix(*backend, d, d);
  const Tensor<T> p = scaled_identity(*backend, d, T(1));
  ParameterBlock<T> block = make_shared_row_block(*backend, 0, weights, p);
  const Tensor<T> a = random_jacobian(*backend, d, 1);
  const Tensor<T> target = random_matrix(*backend, d, 1);
  SharedRowRls<T> rls(*backend, JitterConfig{});
  for (auto _ : state) {
    if (rls.update(block, a, target, T(1)) != UpdateStatus::applied) {
      state.SkipWithError("shared-row update was not applied");
      break;
    }
    benchmark::ClobberMemory();
  }
  const Work work = shared_row_sample_work(d, d, sizeof(T));
  report_work(state, work.flops, work.bytes);
  state.SetItemsProcessed(state.iterations());
}

template <typename T>
void rls_accumulate(benchmark::State& state, Index d) {
  auto backend = make_backend<T>("cpu");
  SharedRowRls<T> rls(*backend, JitterConfig{});
  SharedRowStatistics<T> stats = rls.zero_statistics(d, d);
  const Tensor<T> inputs = random_jacobian(*backend, d, kBatch);
  const Tensor<T> targets = random_matrix(*backend, d, kBatch);
  for (auto _ : state) {
    if (!rls.accumulate(stats, inputs, targets, T(1))) {
      state.SkipWithError("shared-row batch was rejected");
      break;
    }
    benchmark::ClobberMemory();
  }
  const Work work = shared_row_accumulate_work(d, d, kBatch, sizeof(T));
  report_work(state, work.flops, work.bytes);
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// The same statistics applied every iteration: L grows by a fixed PSD matrix each time and stays
// positive definite; the cost does not depend on the values.
template <typename T>
void rls_apply(benchmark::State& state, Index d) {
  auto backend = make_backend<T>("cpu");
  const Tensor<T> weights = random_matrix(*backend, d, d);
  const Tensor<T> information = scaled_identity(*backend, d, T(1));
  ParameterBlock<T> block =
      make_shared_row_block(*backend, 0, weights, information, Form::information);
  SharedRowRls<T> rls(*backend, JitterConfig{});
  SharedRowStatistics<T> stats = rls.zero_statistics(d, d);
  rls.accumulate(stats, random_jacobian(*backend, d, kBatch), random_matrix(*backend, d, kBatch),
                 T(1));
  for (auto _ : state) {
    if (rls.apply(block, stats) != UpdateStatus::applied) {
      state.SkipWithError("shared-row apply failed");
      break;
    }
    benchmark::ClobberMemory();
  }
  const Work work = shared_row_apply_work(d, d, sizeof(T));
  report_work(state, work.flops, work.bytes);
}

template <typename T>
void register_family(const char* kernel, void (*fn)(benchmark::State&, Index),
                     std::initializer_list<Index> sizes, const std::string& suffix) {
  for (const Index d : sizes) {
    benchmark::RegisterBenchmark(
        benchmark_name<T>(kernel, "d:" + std::to_string(d) + suffix).c_str(), fn, d)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.3);
  }
}

template <typename T>
void register_shared_row_precision() {
  const std::string batch = "/batch:" + std::to_string(kBatch);
  register_family<T>("rls_sample", rls_sample<T>, {256, 1024, 2048, 4096}, "");
  register_family<T>("rls_accumulate", rls_accumulate<T>, {256, 1024, 2048, 4096}, batch);
  // d = 4096 is ~160 GFLOP per apply (2 d^3 for W = B L^-1): one iteration, ~15 s in fp64.
  register_family<T>("rls_apply", rls_apply<T>, {256, 1024, 2048, 4096}, "");
}

}  // namespace

void register_shared_row_benchmarks() {
  register_shared_row_precision<double>();
  register_shared_row_precision<float>();
}

}  // namespace kwm::bench
