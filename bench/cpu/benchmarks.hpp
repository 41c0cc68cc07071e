// The benchmark families of kwm_cpu_bench; main.cpp registers them in this order.
#pragma once

namespace kwm::bench {

void register_ceiling_benchmarks();     // ceiling_bench.cpp: Eigen GEMM, large memcpy
void register_kernel_benchmarks();      // kernel_bench.cpp: single kernels on the n x n P
void register_dense_step_benchmarks();  // dense_step_bench.cpp: section-2 step, one dense block
void register_dekf_step_benchmarks();   // dekf_step_bench.cpp: DecoupledEkf over several blocks
void register_shared_row_benchmarks();  // shared_row_bench.cpp: section-4 RLS, sample and batch

}  // namespace kwm::bench
