// Shared pieces of the CPU micro-benchmarks: precision names, random operands, and the FLOP and
// byte counters every benchmark reports (each benchmark states its own counting model).
#pragma once

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "core/backend/backend.hpp"
#include "core/backend/host_transfer.hpp"

namespace kwm::bench {

template <typename T>
constexpr const char* precision_name() {
  return sizeof(T) == 8 ? "fp64" : "fp32";
}

// "<kernel>/<fp64|fp32>/<shape>": the names summarise.py parses and --benchmark_filter matches.
template <typename T>
std::string benchmark_name(const std::string& kernel, const std::string& shape) {
  return kernel + "/" + precision_name<T>() + "/" + shape;
}

// Per-iteration work turned into rates over the measured (real) time: FLOP/s as a counter,
// bytes through Google Benchmark's own bytes_per_second. The per-iteration totals are kept as
// plain counters so that a reader can redo the arithmetic.
inline void report_work(benchmark::State& state, double flops, double bytes) {
  state.counters["FLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * state.iterations());
  state.counters["flop_per_iter"] = flops;
  state.counters["byte_per_iter"] = bytes;
}

// A Jacobian-like m x n matrix with i.i.d. entries of variance 1/n, so that H P H^T = O(1) for
// P = I and the innovation covariance stays well conditioned over many repeated updates.
template <typename T>
Tensor<T> random_jacobian(Backend<T>& backend, Index rows, Index cols) {
  const T amplitude = static_cast<T>(std::sqrt(3.0 / static_cast<double>(cols)));
  return to_backend(backend, HostMatrix<T>::Random(rows, cols) * amplitude);
}

template <typename T>
Tensor<T> random_matrix(Backend<T>& backend, Index rows, Index cols) {
  return to_backend(backend, HostMatrix<T>::Random(rows, cols));
}

// value * I, built without an n x n host temporary (P is up to 8192^2).
template <typename T>
Tensor<T> scaled_identity(Backend<T>& backend, Index n, T value) {
  Tensor<T> p = backend.allocate(n, n);
  backend.add_identity(value, p);
  return p;
}

}  // namespace kwm::bench
