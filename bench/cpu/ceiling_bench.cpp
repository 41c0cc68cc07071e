// Ceilings measured in the same run as the kernels: Eigen GEMM (the compute roof) and a large
// memcpy (the memory roof), on one thread and with the same compiler flags as kwm_backend.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "bench/cpu/benchmarks.hpp"

namespace kwm::bench {
namespace {

template <typename T>
constexpr const char* ceiling_precision() {
  return sizeof(T) == 8 ? "fp64" : "fp32";
}

// C = A B for n x n operands. FLOPs 2 n^3; bytes 3 n^2 sizeof(T) (read A and B, write C once:
// the compulsory traffic; GEMM is compute-bound, this is only for the table).
template <typename T>
void gemm_ceiling(benchmark::State& state, Eigen::Index n) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  const Mat a = Mat::Random(n, n);
  const Mat b = Mat::Random(n, n);
  Mat c = Mat::Zero(n, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  const double size = static_cast<double>(n);
  state.counters["FLOP/s"] =
      benchmark::Counter(2.0 * size * size * size, benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(static_cast<std::int64_t>(3.0 * size * size * sizeof(T)) *
                          state.iterations());
}

// memcpy of `bytes` between two pre-touched buffers. Bytes moved: 2 x size (read the source,
// write the destination); large copies use non-temporal stores, so no write-allocate read.
void memcpy_ceiling(benchmark::State& state, std::size_t bytes) {
  std::vector<unsigned char> source(bytes, 1);
  std::vector<unsigned char> destination(bytes, 0);
  for (auto _ : state) {
    std::memcpy(destination.data(), source.data(), bytes);
    benchmark::DoNotOptimize(destination.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(2 * bytes) * state.iterations());
}

}  // namespace

void register_ceiling_benchmarks() {
  constexpr Eigen::Index n = 2048;
  const std::string shape = "/n:" + std::to_string(n);
  benchmark::RegisterBenchmark(
      (std::string("ceiling_gemm/") + ceiling_precision<double>() + shape).c_str(),
      gemm_ceiling<double>, n)
      ->Unit(benchmark::kMillisecond)
      ->MinTime(1.0);
  benchmark::RegisterBenchmark(
      (std::string("ceiling_gemm/") + ceiling_precision<float>() + shape).c_str(),
      gemm_ceiling<float>, n)
      ->Unit(benchmark::kMillisecond)
      ->MinTime(1.0);
  // 1 GiB is far beyond the 300 MiB L3 (DRAM); 32 MiB is what a cache-resident P sees.
  for (const std::size_t mib : {std::size_t{1024}, std::size_t{32}}) {
    benchmark::RegisterBenchmark(("ceiling_memcpy/bytes/MiB:" + std::to_string(mib)).c_str(),
                                 memcpy_ceiling, mib << 20U)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(1.0);
  }
}

}  // namespace kwm::bench
