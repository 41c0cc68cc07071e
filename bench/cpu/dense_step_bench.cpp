// The whole ALGORITHMS.md section-2 step for one dense block, composed from backend kernels as
// the equations write it: U = P H^T, S = H U + R, S = L L^T, K = U S^-1, m += K e, P downdate.
// This is the kernel cost with no filter bookkeeping; dekf_step_bench.cpp runs the library step.
#include <benchmark/benchmark.h>

#include <string>

#include "bench/cpu/bench_support.hpp"
#include "bench/cpu/benchmarks.hpp"
#include "bench/cpu/work_model.hpp"

namespace kwm::bench {
namespace {

// P starts at I and is downdated in place every iteration with the same H: H P H^T shrinks like
// 1/k, S = R + H P H^T stays >= R = I, so the step never fails and the cost (dense kernels, no
// data-dependent work) is that of any other update.
template <typename T>
void dense_step(benchmark::State& state, Index n, Index m) {
  auto backend = make_backend<T>("cpu");
  Tensor<T> p = scaled_identity(*backend, n, T(1));
  Tensor<T> mean = backend->allocate(n, 1);
  const Tensor<T> h = random_jacobian(*backend, m, n);
  const Tensor<T> e = random_matrix(*backend, m, 1);
  const Tensor<T> r = scaled_identity(*backend, m, T(1));
  Tensor<T> u = backend->allocate(n, m);
  Tensor<T> gain = backend->allocate(n, m);
  Tensor<T> s = backend->allocate(m, m);
  for (auto _ : state) {
    backend->gemm(Op::none, Op::transpose, T(1), p, h, T(0), u);  // U = P H^T
    backend->copy(r, s);
    backend->gemm(Op::none, Op::none, T(1), h, u, T(1), s);  // S = R + H U
    if (!backend->cholesky(s)) {                             // S = L L^T (in place)
      state.SkipWithError("S is not positive definite");
      break;
    }
    backend->copy(u, gain);
    backend->cholesky_solve_right(s, gain);                        // K = U S^-1
    backend->gemm(Op::none, Op::none, T(1), gain, e, T(1), mean);  // m += K e
    backend->riccati_downdate(p, gain, u);                         // P -= (K U^T + U K^T) / 2
    benchmark::DoNotOptimize(p.data());
    benchmark::ClobberMemory();
  }
  Work work = dense_block_work(n, m, sizeof(T));
  work += innovation_work(m, sizeof(T));
  report_work(state, work.flops, work.bytes);
}

template <typename T>
void register_dense_step_precision() {
  // n = 8192 fp64 holds a 512 MiB P; the n = 8192, m = 256 step is ~69 GFLOP, one iteration.
  for (const Index n : {Index{256}, Index{1024}, Index{4096}, Index{8192}}) {
    for (const Index m : {Index{1}, Index{16}, Index{64}, Index{256}}) {
      const std::string shape = "n:" + std::to_string(n) + "/m:" + std::to_string(m);
      benchmark::RegisterBenchmark(benchmark_name<T>("dense_step", shape).c_str(), dense_step<T>, n,
                                   m)
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.3);
    }
  }
}

}  // namespace

void register_dense_step_benchmarks() {
  register_dense_step_precision<double>();
  register_dense_step_precision<float>();
}

}  // namespace kwm::bench
