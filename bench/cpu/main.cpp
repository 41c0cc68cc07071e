// kwm_cpu_bench entry point: records how the run was built and threaded (in the JSON context,
// where summarise.py finds it), registers every benchmark family and runs Google Benchmark.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <fstream>
#include <string>

#include "bench/cpu/benchmarks.hpp"

int main(int argc, char** argv) {
  // Both numbers describe this translation unit, which is built with the same flags as
  // kwm_backend (kwm_cpu_ceiling_native excepted); no OpenMP, so Eigen runs one thread.
  benchmark::AddCustomContext("eigen_version", std::to_string(EIGEN_WORLD_VERSION) + "." +
                                                   std::to_string(EIGEN_MAJOR_VERSION) + "." +
                                                   std::to_string(EIGEN_MINOR_VERSION));
  benchmark::AddCustomContext("eigen_simd", Eigen::SimdInstructionSetsInUse());
  benchmark::AddCustomContext("eigen_threads", std::to_string(Eigen::nbThreads()));
  benchmark::AddCustomContext("kwm_build", KWM_BENCH_BUILD);
  // Rates are over CPU time (the default): the 2-core machine is shared, and time spent
  // descheduled is not the kernel's. The load average at start says how shared it was.
  std::string load;
  std::getline(std::ifstream("/proc/loadavg"), load);
  benchmark::AddCustomContext("load_average_at_start", load);

  kwm::bench::register_ceiling_benchmarks();
#ifndef KWM_BENCH_CEILING_ONLY
  kwm::bench::register_kernel_benchmarks();
  kwm::bench::register_dense_step_benchmarks();
  kwm::bench::register_dekf_step_benchmarks();
  kwm::bench::register_shared_row_benchmarks();
#endif

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
