// The library DEKF step (DecoupledEkf::update, ALGORITHMS.md section 2) over several blocks:
// eight dense blocks of 512..1024 parameters and one diagonal block, plus single dense blocks to
// compare with dense_step (the same arithmetic without the filter's checks and bookkeeping).
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "bench/cpu/bench_support.hpp"
#include "bench/cpu/benchmarks.hpp"
#include "bench/cpu/work_model.hpp"
#include "core/kalman/decoupled_ekf.hpp"

namespace kwm::bench {
namespace {

struct Layout {
  std::string label;
  std::vector<Index> dense;  // dense block sizes
  Index diagonal = 0;        // diagonal block size, 0 for none
};

// Default UpdateConfig: jitter on (costs nothing unless the first Cholesky fails), no gating,
// plain downdate, no eigenvalue clamping: the configuration a large run would use.
template <typename T>
void dekf_step(benchmark::State& state, const Layout& layout, Index m) {
  auto backend = make_backend<T>("cpu");
  std::vector<ParameterBlock<T>> blocks;
  blocks.reserve(layout.dense.size() + 1);
  BlockId id = 0;
  Work work = innovation_work(m, sizeof(T));
  for (const Index n : layout.dense) {
    const Tensor<T> mean = backend->allocate(n, 1);
    const Tensor<T> p = scaled_identity(*backend, n, T(1));
    blocks.push_back(make_dense_block(*backend, id++, mean, p));
    work += dense_block_work(n, m, sizeof(T));
  }
  if (layout.diagonal > 0) {
    const Tensor<T> mean = backend->allocate(layout.diagonal, 1);
    Tensor<T> variances = backend->allocate(layout.diagonal, 1);
    backend->fill(variances, T(1));
    blocks.push_back(make_diagonal_block(*backend, id++, mean, variances));
    work += diagonal_block_work(layout.diagonal, m, sizeof(T));
  }
  // H_b with entries of variance 1 / (total parameters), so that S = R + sum H_b P_b H_b^T = O(1).
  Index total = 0;
  for (const ParameterBlock<T>& block : blocks) total += block.size();
  std::vector<BlockObservation<T>> observations;
  for (ParameterBlock<T>& block : blocks) {
    const T amplitude = static_cast<T>(std::sqrt(3.0 / static_cast<double>(total)));
    observations.push_back(
        {&block, to_backend(*backend, HostMatrix<T>::Random(m, block.size()) * amplitude)});
  }
  const Tensor<T> e = random_matrix(*backend, m, 1);
  const Tensor<T> r = scaled_identity(*backend, m, T(1));
  DecoupledEkf<T> filter(*backend, UpdateConfig{});
  for (auto _ : state) {
    const UpdateReport<T> report = filter.update(observations, e, r);
    if (!report.applied()) {
      state.SkipWithError("DEKF update was not applied");
      break;
    }
    benchmark::ClobberMemory();
  }
  report_work(state, work.flops, work.bytes);
}

template <typename T>
void register_layout(const Layout& layout, Index m) {
  const std::string shape = layout.label + "/m:" + std::to_string(m);
  benchmark::RegisterBenchmark(benchmark_name<T>("dekf_step", shape).c_str(), dekf_step<T>, layout,
                               m)
      ->Unit(benchmark::kMillisecond)
      ->MinTime(0.3);
}

template <typename T>
void register_dekf_step_precision() {
  // 5,888 dense parameters in 8 blocks (2 x 512, 640, 768, 1024) + 65,536 diagonal ones.
  const Layout mixed{
      "dense:8x512-1024+diag:65536", {512, 512, 640, 640, 768, 768, 1024, 1024}, 65536};
  for (const Index m : {Index{1}, Index{16}, Index{64}}) register_layout<T>(mixed, m);
  for (const Index n : {Index{1024}, Index{4096}}) {
    const Layout single{"dense:1x" + std::to_string(n), {n}, 0};
    for (const Index m : {Index{1}, Index{16}}) register_layout<T>(single, m);
  }
}

}  // namespace

void register_dekf_step_benchmarks() {
  register_dekf_step_precision<double>();
  register_dekf_step_precision<float>();
}

}  // namespace kwm::bench
