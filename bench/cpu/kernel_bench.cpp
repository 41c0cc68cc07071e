// The backend kernels that touch the n x n covariance, one at a time, to show where the
// dense-block step spends its memory-bound time: U = P H^T (gemm), the symmetric downdate
// (riccati_downdate) and the explicit symmetrise the library runs after it (symmetrize).
#include <benchmark/benchmark.h>

#include <string>

#include "bench/cpu/bench_support.hpp"
#include "bench/cpu/benchmarks.hpp"

namespace kwm::bench {
namespace {

enum class Kernel { covariance_product, riccati_downdate, symmetrize };

// FLOPs / bytes per call, s = sizeof(T):
//   covariance_product  U = P H^T       2 n^2 m    P read once: n^2 s
//   riccati_downdate    P -= (K U^T + U K^T) / 2 on one triangle, mirrored
//                                       2 n^2 m    P read and written once: 2 n^2 s
//   symmetrize          P = (P + P^T)/2 n^2        P read and written once: 2 n^2 s
// (n x m operands are small and not counted here.)
template <typename T>
void covariance_kernel(benchmark::State& state, Kernel kernel, Index n, Index m) {
  auto backend = make_backend<T>("cpu");
  Tensor<T> p = scaled_identity(*backend, n, T(1));
  const Tensor<T> h = random_jacobian(*backend, m, n);
  Tensor<T> u = backend->allocate(n, m);
  // A tiny gain keeps P positive definite over any number of downdates.
  Tensor<T> gain = random_jacobian(*backend, n, m);
  backend->scale(T(1e-6), gain);
  for (auto _ : state) {
    switch (kernel) {
      case Kernel::covariance_product:
        backend->gemm(Op::none, Op::transpose, T(1), p, h, T(0), u);
        break;
      case Kernel::riccati_downdate:
        backend->riccati_downdate(p, gain, u);
        break;
      case Kernel::symmetrize:
        backend->symmetrize(p);
        break;
    }
    benchmark::DoNotOptimize(p.data());
    benchmark::DoNotOptimize(u.data());
    benchmark::ClobberMemory();
  }
  const double dn = static_cast<double>(n);
  const double dm = static_cast<double>(m);
  const double s = sizeof(T);
  switch (kernel) {
    case Kernel::covariance_product:
      report_work(state, 2.0 * dn * dn * dm, s * dn * dn);
      break;
    case Kernel::riccati_downdate:
      report_work(state, 2.0 * dn * dn * dm, 2.0 * s * dn * dn);
      break;
    case Kernel::symmetrize:
      report_work(state, dn * dn, 2.0 * s * dn * dn);
      break;
  }
}

template <typename T>
void register_kernel_precision() {
  for (const Index n : {Index{1024}, Index{4096}}) {
    for (const Index m : {Index{1}, Index{16}}) {
      const std::string shape = "n:" + std::to_string(n) + "/m:" + std::to_string(m);
      benchmark::RegisterBenchmark(benchmark_name<T>("kernel_covariance_product", shape).c_str(),
                                   covariance_kernel<T>, Kernel::covariance_product, n, m)
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.3);
      benchmark::RegisterBenchmark(benchmark_name<T>("kernel_riccati_downdate", shape).c_str(),
                                   covariance_kernel<T>, Kernel::riccati_downdate, n, m)
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.3);
    }
    benchmark::RegisterBenchmark(
        benchmark_name<T>("kernel_symmetrize", "n:" + std::to_string(n)).c_str(),
        covariance_kernel<T>, Kernel::symmetrize, n, Index{1})
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.3);
  }
}

}  // namespace

void register_kernel_benchmarks() {
  register_kernel_precision<double>();
  register_kernel_precision<float>();
}

}  // namespace kwm::bench
