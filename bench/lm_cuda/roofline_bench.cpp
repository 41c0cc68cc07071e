// Roofline of the kwm-linearized step's Riccati and factor work on one CUDA device (issue 7): in
// one run it measures the ceilings (SGEMM FLOP rate in fp32 and in TF32, device memory bandwidth
// by a device-to-device copy and by a streaming read+write kernel) and then, at the shapes of
// configs/lm_gpu_10m.yaml (d 256, MLP 1024, vocab 4096, 12 layers, batch B x 256 tokens), every
// piece the learner runs per block: the information statistics x x^T (SGEMM), the Cholesky
// factorisations (cusolverDnSpotrf one by one and cusolverDnSpotrfBatched), the solves
// (cusolverDnSpotrs and pairs of cublasStrsmBatched), the embedding and layer-norm information
// kernels. Each is reported with its time, FLOPs, compulsory bytes, arithmetic intensity,
// achieved rate and its fraction of the matching measured ceiling (compute for products,
// factorisations and solves; bandwidth for the elementwise kernels) and of the roofline
// min(compute, intensity x bandwidth). Output: a markdown table on stdout, JSON with --json.
// Run: lm_cuda_roofline_bench [--batch B] [--reps R] [--gemm-n N] [--copy-mib M] [--json PATH]
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>
#include <nlohmann/json.hpp>

#include "bench/lm_cuda/bench_support.hpp"
#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/device_buffer.hpp"
#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/cuda/tensor_math.hpp"
#include "core/lm/cuda/transpose_kernels.cuh"

namespace {

using kwm::lm::cuda::DeviceBuffer;
using kwm::lm::cuda::TensorMath;

std::size_t elements(std::int64_t rows, std::int64_t cols) {
  return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
}

// Time per call in ms over `reps` repetitions, each: prepare() (untimed: restores inputs that the
// call overwrites), then `inner` calls of run() between two CUDA events on `stream`.
struct Timing {
  double best_ms = 0.0;
  double median_ms = 0.0;
};

template <typename Prepare, typename Run>
Timing time_calls(cudaStream_t stream, int reps, int inner, Prepare&& prepare, Run&& run) {
  cudaEvent_t start = nullptr, stop = nullptr;
  KWM_CUDA_CHECK(cudaEventCreate(&start));
  KWM_CUDA_CHECK(cudaEventCreate(&stop));
  prepare();  // one untimed warm-up (cuBLAS/cuSOLVER pick and load their kernels here)
  run();
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    prepare();
    KWM_CUDA_CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < inner; ++i) run();
    KWM_CUDA_CHECK(cudaEventRecord(stop, stream));
    KWM_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    KWM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(static_cast<double>(ms) / inner);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  const std::size_t mid = times.size() / 2;
  const double median = times.size() % 2 == 1 ? times[mid] : 0.5 * (times[mid - 1] + times[mid]);
  return {times.front(), median};
}

// Uniform values in [-scale, scale) from a fixed LCG (fast for the 2^26-float ceiling operands;
// products of zeros would draw less power and overstate the compute ceiling).
void fill_uniform(float* device, std::size_t count, std::uint64_t seed, float scale,
                  cudaStream_t stream) {
  std::vector<float> host(count);
  std::uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& v : host) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = scale * (static_cast<float>(state >> 40) / 8388608.0f - 1.0f);  // 24 bits -> [-1, 1)
  }
  KWM_CUDA_CHECK(
      cudaMemcpyAsync(device, host.data(), count * sizeof(float), cudaMemcpyHostToDevice, stream));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
}

// n on the diagonal, uniform (-1/2, 1/2) symmetric off the diagonal: positive definite by
// Gershgorin, like an information matrix dominated by its prior and counts.
std::vector<float> positive_definite(int n, std::uint64_t seed) {
  std::vector<float> a(elements(n, n));
  std::uint64_t state = seed;
  for (int j = 0; j < n; ++j) {
    for (int i = j; i < n; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      const float v =
          i == j ? static_cast<float>(n) : static_cast<float>(state >> 40) / 16777216.0f - 0.5f;
      a[elements(i, 1) + elements(j, n)] = v;
      a[elements(j, 1) + elements(i, n)] = v;
    }
  }
  return a;
}

struct Ceilings {
  double fp32_flops = 0.0;  // FLOP/s
  double tf32_flops = 0.0;
  double copy_bytes = 0.0;    // B/s, cudaMemcpyAsync device to device (read + write)
  double stream_bytes = 0.0;  // B/s, the streaming kernel (read + write)
  double bandwidth() const { return std::max(copy_bytes, stream_bytes); }
};

enum class Ceiling { fp32, tf32, bandwidth };

const char* ceiling_name(Ceiling c) {
  switch (c) {
    case Ceiling::fp32:
      return "fp32 SGEMM";
    case Ceiling::tf32:
      return "TF32 GEMM";
    case Ceiling::bandwidth:
      return "bandwidth";
  }
  return "";
}

// One measured piece of the step.
struct Piece {
  std::string name;   // what the learner does
  std::string shape;  // its sizes
  // Which step runs it: "both" (every version of the learner), "per-block" (one cuSOLVER
  // factorisation and solve per linear block), "batched" (one potrfBatched per size and two
  // cublasStrsmBatched per shape), "candidate" (neither: shown for comparison).
  std::string variant;
  int per_step = 0;  // calls of this shape per step in that variant (0: shown, not summed)
  double flops = 0.0;
  double bytes = 0.0;  // compulsory: each operand read once, each result written once
  Ceiling ceiling = Ceiling::fp32;
  Timing time;
};

struct Rates {
  double intensity, rate, ceiling, fraction, roofline, roofline_fraction;
};

Rates rates_of(const Piece& p, const Ceilings& c) {
  const double seconds = p.time.best_ms * 1e-3;
  const double compute = p.ceiling == Ceiling::tf32 ? c.tf32_flops : c.fp32_flops;
  const double intensity = p.flops / p.bytes;
  const double roofline = std::min(compute, intensity * c.bandwidth());  // attainable FLOP/s
  Rates r{};
  r.intensity = intensity;
  r.roofline = roofline;
  r.roofline_fraction = p.flops / seconds / roofline;
  if (p.ceiling == Ceiling::bandwidth) {
    r.rate = p.bytes / seconds;
    r.ceiling = c.bandwidth();
  } else {
    r.rate = p.flops / seconds;
    r.ceiling = compute;
  }
  r.fraction = r.rate / r.ceiling;
  return r;
}

// The device work: one stream, one cuBLAS handle (default math), one cuSOLVER handle.
struct Device {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cusolverDnHandle_t solver = nullptr;
  Device() {
    KWM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    KWM_CUBLAS_CHECK(cublasCreate(&blas));
    KWM_CUBLAS_CHECK(cublasSetStream(blas, stream));
    KWM_CUBLAS_CHECK(cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH));
    KWM_CUSOLVER_CHECK(cusolverDnCreate(&solver));
    KWM_CUSOLVER_CHECK(cusolverDnSetStream(solver, stream));
  }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  ~Device() {
    cusolverDnDestroy(solver);
    cublasDestroy(blas);
    cudaStreamDestroy(stream);
  }
};

const auto nothing = [] {};

Ceilings measure_ceilings(Device& dev, int reps, std::int64_t n, std::int64_t copy_mib,
                          nlohmann::json& out) {
  Ceilings c;
  {
    DeviceBuffer<float> a(elements(n, n)), b(elements(n, n)), product(elements(n, n));
    fill_uniform(a.data(), elements(n, n), 1, 1.0f, dev.stream);
    fill_uniform(b.data(), elements(n, n), 2, 1.0f, dev.stream);
    const float one = 1.0f, zero = 0.0f;
    const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(n) * n;
    for (const TensorMath math : {TensorMath::fp32, TensorMath::tf32}) {
      const Timing t = time_calls(dev.stream, reps, 1, nothing, [&] {
        KWM_CUBLAS_CHECK(kwm::lm::cuda::gemm(dev.blas, math, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n,
                                             &one, a.data(), n, b.data(), n, &zero, product.data(),
                                             n));
      });
      const double rate = flops / (t.best_ms * 1e-3);
      (math == TensorMath::fp32 ? c.fp32_flops : c.tf32_flops) = rate;
      out[std::string("gemm_") + kwm::lm::cuda::tensor_math_name(math)] = {
          {"n", n},
          {"flops", flops},
          {"best_ms", t.best_ms},
          {"median_ms", t.median_ms},
          {"flop_per_s", rate}};
    }
  }
  {
    const std::size_t count = static_cast<std::size_t>(copy_mib) * (1u << 20) / sizeof(float);
    DeviceBuffer<float> from(count), to(count);
    KWM_CUDA_CHECK(cudaMemsetAsync(from.data(), 0, count * sizeof(float), dev.stream));
    const double bytes = 2.0 * static_cast<double>(count * sizeof(float));  // read + write
    const Timing copy = time_calls(dev.stream, reps, 1, nothing, [&] {
      KWM_CUDA_CHECK(cudaMemcpyAsync(to.data(), from.data(), count * sizeof(float),
                                     cudaMemcpyDeviceToDevice, dev.stream));
    });
    // The library's own elementwise kernel, the bias add over 1024-row columns: one read and one
    // write per float, the access pattern of every elementwise kernel of the step.
    const auto rows = static_cast<kwm::lm::cuda::kernels::Index>(1024);
    const auto columns_of_rows = static_cast<kwm::lm::cuda::kernels::Index>(count) / rows;
    const Timing stream = time_calls(dev.stream, reps, 1, nothing, [&] {
      kwm::lm::cuda::kernels::add_bias(to.data(), from.data(), rows, columns_of_rows, dev.stream);
    });
    c.copy_bytes = bytes / (copy.best_ms * 1e-3);
    c.stream_bytes = bytes / (stream.best_ms * 1e-3);
    out["copy"] = {{"mib", copy_mib},
                   {"bytes", bytes},
                   {"best_ms", copy.best_ms},
                   {"median_ms", copy.median_ms},
                   {"byte_per_s", c.copy_bytes}};
    out["stream_kernel"] = {{"mib", copy_mib},
                            {"bytes", bytes},
                            {"best_ms", stream.best_ms},
                            {"median_ms", stream.median_ms},
                            {"byte_per_s", c.stream_bytes}};
  }
  out["bandwidth_byte_per_s"] = c.bandwidth();
  return c;
}

// The information statistics of a linear block with d inputs over `columns` tokens: the
// learner's x x^T by SGEMM (the full square, beta = lambda into an ld d+1 matrix), and the same
// product in TF32 as a candidate (the learner keeps its statistics in fp32).
void statistics(Device& dev, int reps, std::int64_t columns, std::vector<Piece>& pieces) {
  for (const std::int64_t d : {256, 1024}) {
    const std::int64_t m = d + 1;
    DeviceBuffer<float> x(elements(d, columns)), information(elements(m, m));
    fill_uniform(x.data(), elements(d, columns), 3, 1.0f, dev.stream);
    KWM_CUDA_CHECK(
        cudaMemsetAsync(information.data(), 0, elements(m, m) * sizeof(float), dev.stream));
    const float one = 1.0f, lambda = 0.999f;
    for (const TensorMath math : {TensorMath::fp32, TensorMath::tf32}) {
      Piece p;
      const bool tf32 = math == TensorMath::tf32;
      p.name = tf32 ? "x x^T statistics in TF32 (SGEMM-shaped GemmEx)" : "x x^T statistics (SGEMM)";
      p.shape =
          std::to_string(d) + " x " + std::to_string(columns) + " -> L " + std::to_string(m) + "^2";
      p.variant = tf32 ? "candidate" : "both";
      p.per_step = tf32 ? 0 : (d == 256 ? 37 : 12);
      p.flops = 2.0 * static_cast<double>(d) * static_cast<double>(d) * columns;
      p.bytes = 4.0 * (static_cast<double>(d) * columns + 2.0 * static_cast<double>(d) * d);
      p.ceiling = tf32 ? Ceiling::tf32 : Ceiling::fp32;
      p.time = time_calls(dev.stream, reps, 10, nothing, [&] {
        KWM_CUBLAS_CHECK(kwm::lm::cuda::gemm(dev.blas, math, CUBLAS_OP_N, CUBLAS_OP_T, d, d,
                                             columns, &one, x.data(), d, x.data(), d, &lambda,
                                             information.data(), m));
      });
      pieces.push_back(p);
    }
  }
}

// Copies of one positive definite matrix into `count` slots of size n^2, and their pointers.
struct Matrices {
  DeviceBuffer<float> pristine, work;
  DeviceBuffer<float*> pointers;
  std::vector<float*> host_pointers;
  Matrices(int n, int count, cudaStream_t stream)
      : pristine(elements(n, n) * static_cast<std::size_t>(count)),
        work(elements(n, n) * static_cast<std::size_t>(count)),
        pointers(static_cast<std::size_t>(count)) {
    const std::vector<float> a = positive_definite(n, static_cast<std::uint64_t>(n));
    for (int k = 0; k < count; ++k) {
      KWM_CUDA_CHECK(cudaMemcpyAsync(pristine.data() + elements(n, n) * static_cast<std::size_t>(k),
                                     a.data(), a.size() * sizeof(float), cudaMemcpyHostToDevice,
                                     stream));
      host_pointers.push_back(work.data() + elements(n, n) * static_cast<std::size_t>(k));
    }
    KWM_CUDA_CHECK(cudaMemcpyAsync(pointers.data(), host_pointers.data(),
                                   host_pointers.size() * sizeof(float*), cudaMemcpyHostToDevice,
                                   stream));
    KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  void restore(int n, int count, cudaStream_t stream) {
    KWM_CUDA_CHECK(cudaMemcpyAsync(work.data(), pristine.data(),
                                   elements(n, n) * static_cast<std::size_t>(count) * sizeof(float),
                                   cudaMemcpyDeviceToDevice, stream));
  }
};

double potrf_flops(int n) { return static_cast<double>(n) * n * n / 3.0; }
double triangle_bytes(int n) { return 4.0 * static_cast<double>(n) * (n + 1) / 2.0; }

void factorisations(Device& dev, int reps, std::vector<Piece>& pieces) {
  struct Case {
    int n, count;
    bool batched;
    const char* variant;
    int per_step;
  };
  // The step's blocks: 37 of size 257 (qkv, attn_out, fc per layer, and the head), 12 of 1025
  // (proj). One by one: the learner's cusolverDnSpotrf per block; batched: one call per size.
  const Case cases[] = {{257, 1, false, "per-block", 37},
                        {1025, 1, false, "per-block", 12},
                        {257, 37, false, "per-block", 0},
                        {257, 37, true, "batched", 1},
                        {1025, 12, true, "batched", 1}};
  for (const Case& k : cases) {
    Matrices m(k.n, k.count, dev.stream);
    int lwork = 0;
    KWM_CUSOLVER_CHECK(cusolverDnSpotrf_bufferSize(dev.solver, CUBLAS_FILL_MODE_LOWER, k.n,
                                                   m.work.data(), k.n, &lwork));
    DeviceBuffer<float> workspace(static_cast<std::size_t>(std::max(lwork, 1)));
    DeviceBuffer<int> info(static_cast<std::size_t>(k.count));
    Piece p;
    p.name = k.batched ? "potrf, cusolverDnSpotrfBatched"
                       : (k.count == 1 ? "potrf, cusolverDnSpotrf"
                                       : "potrf, cusolverDnSpotrf one by one");
    p.shape = (k.count > 1 ? std::to_string(k.count) + " x " : std::string()) + "n " +
              std::to_string(k.n);
    p.variant = k.variant;
    p.per_step = k.per_step;
    p.flops = k.count * potrf_flops(k.n);
    p.bytes = k.count * 2.0 * triangle_bytes(k.n);
    p.ceiling = Ceiling::fp32;
    p.time = time_calls(
        dev.stream, reps, 1, [&] { m.restore(k.n, k.count, dev.stream); },
        [&] {
          if (k.batched) {
            KWM_CUSOLVER_CHECK(cusolverDnSpotrfBatched(dev.solver, CUBLAS_FILL_MODE_LOWER, k.n,
                                                       m.pointers.data(), k.n, info.data(),
                                                       k.count));
            return;
          }
          for (int b = 0; b < k.count; ++b) {
            KWM_CUSOLVER_CHECK(cusolverDnSpotrf(dev.solver, CUBLAS_FILL_MODE_LOWER, k.n,
                                                m.host_pointers[static_cast<std::size_t>(b)], k.n,
                                                workspace.data(), std::max(lwork, 1),
                                                info.data() + b));
          }
        });
    std::vector<int> status(static_cast<std::size_t>(k.count));
    KWM_CUDA_CHECK(cudaMemcpy(status.data(), info.data(), status.size() * sizeof(int),
                              cudaMemcpyDeviceToHost));
    for (const int s : status)
      if (s != 0)
        throw std::runtime_error("potrf of the test matrix failed: info " + std::to_string(s));
    pieces.push_back(p);
  }
}

void solves(Device& dev, int reps, std::vector<Piece>& pieces) {
  struct Block {
    const char* name;
    int n, rhs, per_step;
  };
  // L^-1 B for B = (1/r) a dz^T of each linear block: n = d_in + 1, one right-hand side per
  // output row. The layer blocks come 12 per step (one per layer), the head once.
  const Block blocks[] = {{"qkv", 257, 768, 12},
                          {"attn_out", 257, 256, 12},
                          {"fc", 257, 1024, 12},
                          {"proj", 1025, 256, 12},
                          {"head", 257, 4096, 1}};
  const float one = 1.0f;
  for (const Block& b : blocks) {
    const int count = b.per_step;
    Matrices factor(b.n, count, dev.stream);  // factored once below; the solves only read it
    {
      int lwork = 0;
      KWM_CUSOLVER_CHECK(cusolverDnSpotrf_bufferSize(dev.solver, CUBLAS_FILL_MODE_LOWER, b.n,
                                                     factor.work.data(), b.n, &lwork));
      DeviceBuffer<float> workspace(static_cast<std::size_t>(std::max(lwork, 1)));
      DeviceBuffer<int> info(1);
      factor.restore(b.n, count, dev.stream);
      for (float* f : factor.host_pointers) {
        KWM_CUSOLVER_CHECK(cusolverDnSpotrf(dev.solver, CUBLAS_FILL_MODE_LOWER, b.n, f, b.n,
                                            workspace.data(), std::max(lwork, 1), info.data()));
      }
      KWM_CUDA_CHECK(cudaStreamSynchronize(dev.stream));
    }
    const std::size_t one_rhs = elements(b.n, b.rhs);
    DeviceBuffer<float> pristine(one_rhs * static_cast<std::size_t>(count));
    DeviceBuffer<float> rhs(one_rhs * static_cast<std::size_t>(count));
    fill_uniform(pristine.data(), one_rhs * static_cast<std::size_t>(count), 5, 1.0f, dev.stream);
    std::vector<float*> rhs_pointers;
    for (int k = 0; k < count; ++k)
      rhs_pointers.push_back(rhs.data() + one_rhs * static_cast<std::size_t>(k));
    DeviceBuffer<float*> device_rhs(rhs_pointers.size());
    KWM_CUDA_CHECK(cudaMemcpy(device_rhs.data(), rhs_pointers.data(),
                              rhs_pointers.size() * sizeof(float*), cudaMemcpyHostToDevice));
    KWM_CUDA_CHECK(
        cudaDeviceSynchronize());  // the pageable copy has landed (stream is non-blocking)
    DeviceBuffer<int> info(1);
    const auto restore = [&](int copies) {
      KWM_CUDA_CHECK(cudaMemcpyAsync(rhs.data(), pristine.data(),
                                     one_rhs * static_cast<std::size_t>(copies) * sizeof(float),
                                     cudaMemcpyDeviceToDevice, dev.stream));
    };
    const std::string shape = "n " + std::to_string(b.n) + ", " + std::to_string(b.rhs) + " rhs";
    const double flops = 2.0 * static_cast<double>(b.n) * b.n * b.rhs;  // two triangular solves
    const double bytes = triangle_bytes(b.n) + 2.0 * 4.0 * static_cast<double>(one_rhs);

    Piece single;
    single.name = std::string("potrs, cusolverDnSpotrs (") + b.name + ")";
    single.shape = shape;
    single.variant = "per-block";
    single.per_step = b.per_step;
    single.flops = flops;
    single.bytes = bytes;
    single.time = time_calls(
        dev.stream, reps, 1, [&] { restore(1); },
        [&] {
          KWM_CUSOLVER_CHECK(cusolverDnSpotrs(dev.solver, CUBLAS_FILL_MODE_LOWER, b.n, b.rhs,
                                              factor.host_pointers[0], b.n, rhs.data(), b.n,
                                              info.data()));
        });
    pieces.push_back(single);

    // The same solves for all `count` blocks of this shape: F y = B, then F^T x = y, each one
    // cublasStrsmBatched call.
    Piece batched;
    batched.name = std::string("2 x cublasStrsmBatched (") + b.name + ")";
    batched.shape = std::to_string(count) + " x " + shape;
    batched.variant = "batched";
    batched.per_step = 1;
    batched.flops = count * flops;
    batched.bytes = count * bytes;
    batched.time = time_calls(
        dev.stream, reps, 1, [&] { restore(count); },
        [&] {
          for (const cublasOperation_t op : {CUBLAS_OP_N, CUBLAS_OP_T}) {
            KWM_CUBLAS_CHECK(cublasStrsmBatched(
                dev.blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, op, CUBLAS_DIAG_NON_UNIT, b.n,
                b.rhs, &one, factor.pointers.data(), b.n, device_rhs.data(), b.n, count));
          }
        });
    pieces.push_back(batched);
  }
}

// The elementwise information kernels of transpose_kernels.cuh at the step's shapes.
void information_kernels(Device& dev, int reps, std::int64_t columns, std::vector<Piece>& pieces) {
  namespace kernels = kwm::lm::cuda::kernels;
  const float lambda = 0.999f, prior = 1.0f, r = 1.0f;
  DeviceBuffer<int> flag(2);
  KWM_CUDA_CHECK(cudaMemsetAsync(flag.data(), 0, 2 * sizeof(int), dev.stream));
  for (const auto& [name, rows] : {std::pair<const char*, std::int64_t>{"token embedding", 4096},
                                   {"position embedding", 256}}) {
    const std::int64_t d = 256;
    DeviceBuffer<float> table(elements(rows, d)), cross(elements(rows, d)), step(elements(rows, d));
    DeviceBuffer<float> information(elements(rows, 1)), counts(elements(rows, 1)),
        updated(elements(rows, 1));
    fill_uniform(table.data(), elements(rows, d), 7, 0.1f, dev.stream);
    fill_uniform(cross.data(), elements(rows, d), 8, 1.0f, dev.stream);
    fill_uniform(information.data(), elements(rows, 1), 9, 1.0f, dev.stream);
    fill_uniform(counts.data(), elements(rows, 1), 10, 1.0f, dev.stream);
    Piece p;
    p.name = std::string("embedding_information_step (") + name + ")";
    p.shape = std::to_string(rows) + " x " + std::to_string(d);
    p.variant = "both";
    p.per_step = 1;
    // 9 operations per element as written in transpose.cu (l recomputed per element).
    p.flops = 9.0 * static_cast<double>(rows) * d;
    // table and cross read, the candidate written; per row information and counts read,
    // the updated information written.
    p.bytes = 12.0 * static_cast<double>(rows) * d + 12.0 * static_cast<double>(rows);
    p.ceiling = Ceiling::bandwidth;
    p.time = time_calls(dev.stream, reps, 20, nothing, [&] {
      kernels::embedding_information_step(table.data(), information.data(), counts.data(),
                                          cross.data(), step.data(), updated.data(), rows, d,
                                          lambda, prior, r, flag.data(), dev.stream);
    });
    pieces.push_back(p);
  }
  {
    // The layer-norm block's moments over the tokens (row sums of xhat and of its squares in one
    // read, kernels::row_sums_and_squares), as KwmLinearizedCuda::queue_moments queues them; 25
    // layer norms per step.
    const std::int64_t d = 256;
    DeviceBuffer<float> xhat(elements(d, columns)), sums(elements(2 * d, 1)),
        work(static_cast<std::size_t>(kernels::row_sums_workspace(d)));
    fill_uniform(xhat.data(), elements(d, columns), 11, 1.0f, dev.stream);
    Piece p;
    p.name = "layer-norm moments (row sums and squares)";
    p.shape = std::to_string(d) + " x " + std::to_string(columns);
    p.variant = "both";
    p.per_step = 25;
    p.flops = 3.0 * static_cast<double>(d) * columns;  // a multiply and two adds per element
    // One read of xhat; the partials (2 x 64 chunks x d floats, written and read) are small.
    p.bytes = 4.0 * static_cast<double>(d) * columns + 2.0 * 2.0 * 64.0 * 4.0 * d + 8.0 * d;
    p.ceiling = Ceiling::bandwidth;
    p.time = time_calls(dev.stream, reps, 10, nothing, [&] {
      kernels::row_sums_and_squares(xhat.data(), d, columns, sums.data() + d, sums.data(),
                                    work.data(), dev.stream);
    });
    pieces.push_back(p);

    DeviceBuffer<float> gain(elements(d, 1)), bias(elements(d, 1)), info(elements(3 * d, 1)),
        cross(elements(2 * d, 1)), out(elements(5 * d, 1));
    fill_uniform(gain.data(), elements(d, 1), 12, 1.0f, dev.stream);
    fill_uniform(bias.data(), elements(d, 1), 13, 1.0f, dev.stream);
    fill_uniform(cross.data(), elements(2 * d, 1), 14, 1.0f, dev.stream);
    // A positive definite 2 x 2 per coordinate: l11 = l22 = 1, l12 = 0 (then the moments add).
    std::vector<float> host_info(elements(3 * d, 1), 0.0f);
    std::fill(host_info.begin(), host_info.begin() + d, 1.0f);
    std::fill(host_info.begin() + 2 * d, host_info.end(), 1.0f);
    KWM_CUDA_CHECK(cudaMemcpy(info.data(), host_info.data(), host_info.size() * sizeof(float),
                              cudaMemcpyHostToDevice));
    KWM_CUDA_CHECK(cudaDeviceSynchronize());
    Piece step;
    step.name = "layer_norm_information_step";
    step.shape = "d " + std::to_string(d);
    step.variant = "both";
    step.per_step = 25;
    // 33 fp64 operations per coordinate as written in transpose.cu (sqrt and division as one).
    step.flops = 33.0 * static_cast<double>(d);
    // Reads gain, bias, 3 information, 2 moments, 2 cross terms; writes gain, bias, 3 information.
    step.bytes = 4.0 * 14.0 * static_cast<double>(d);
    step.ceiling = Ceiling::bandwidth;
    step.time = time_calls(dev.stream, reps, 20, nothing, [&] {
      kernels::layer_norm_information_step(gain.data(), bias.data(), info.data(), sums.data(),
                                           sums.data() + d, cross.data(), cross.data() + d,
                                           static_cast<float>(columns), out.data(), out.data() + d,
                                           out.data() + 2 * d, d, lambda, prior, r, 1e-6f, 10.0f, 8,
                                           flag.data(), flag.data() + 1, dev.stream);
    });
    pieces.push_back(step);
  }
  int flags[2] = {0, 0};
  KWM_CUDA_CHECK(cudaMemcpy(flags, flag.data(), sizeof(flags), cudaMemcpyDeviceToHost));
  if (flags[0] != 0) std::printf("note: an information kernel flagged its random inputs\n");
}

std::string si(double value, const char* unit) {
  const char* prefixes[] = {"", "K", "M", "G", "T", "P"};
  int k = 0;
  while (std::abs(value) >= 1000.0 && k < 5) {
    value /= 1000.0;
    ++k;
  }
  char text[64];
  std::snprintf(text, sizeof(text), "%.3g %s%s", value, prefixes[k], unit);
  std::string out = text;
  if (out.back() == ' ') out.pop_back();  // a plain count: no prefix, no unit
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int batch = 32, reps = 10, gemm_n = 8192, copy_mib = 1024;
    std::string json_path;
    kwm::lm::bench::parse_flags(
        argc, argv,
        {{"--batch", &batch}, {"--reps", &reps}, {"--gemm-n", &gemm_n}, {"--copy-mib", &copy_mib}},
        {{"--json", &json_path}});
    if (!kwm::lm::cuda::device_available()) throw std::runtime_error("no CUDA device visible");
    const std::int64_t columns = static_cast<std::int64_t>(batch) * 256;  // context 256

    nlohmann::json report;
    int device = 0, runtime = 0, driver = 0;
    cudaDeviceProp prop{};
    KWM_CUDA_CHECK(cudaGetDevice(&device));
    KWM_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    KWM_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
    KWM_CUDA_CHECK(cudaDriverGetVersion(&driver));
    report["device"] = {
        {"name", prop.name},
        {"compute_capability", std::to_string(prop.major) + "." + std::to_string(prop.minor)},
        {"multiprocessors", prop.multiProcessorCount},
        {"memory_bytes", static_cast<double>(prop.totalGlobalMem)},
        {"l2_bytes", prop.l2CacheSize},
        {"cuda_runtime", runtime},
        {"cuda_driver", driver}};
    report["settings"] = {{"batch", batch},       {"tokens", columns},
                          {"reps", reps},         {"gemm_n", gemm_n},
                          {"copy_mib", copy_mib}, {"timing", "best of reps, CUDA events"}};
    std::printf("device: %s (sm_%d%d, %d SMs); batch %d x 256 = %lld tokens; best of %d reps\n",
                prop.name, prop.major, prop.minor, prop.multiProcessorCount, batch,
                static_cast<long long>(columns), reps);

    Device dev;
    nlohmann::json ceilings_json;
    const Ceilings c = measure_ceilings(dev, reps, gemm_n, copy_mib, ceilings_json);
    report["ceilings"] = ceilings_json;
    std::printf("\nCeilings (measured in this run):\n\n| ceiling | value |\n|---|---|\n");
    std::printf("| SGEMM fp32 %d^3 | %s |\n", gemm_n, si(c.fp32_flops, "FLOP/s").c_str());
    std::printf("| GEMM TF32 %d^3 | %s |\n", gemm_n, si(c.tf32_flops, "FLOP/s").c_str());
    std::printf("| cudaMemcpyAsync D2D %d MiB (read + write) | %s |\n", copy_mib,
                si(c.copy_bytes, "B/s").c_str());
    std::printf("| streaming kernel y = x*x %d MiB (read + write) | %s |\n", copy_mib,
                si(c.stream_bytes, "B/s").c_str());
    std::printf("| bandwidth ceiling (the higher) | %s |\n", si(c.bandwidth(), "B/s").c_str());
    std::printf("| ridge point fp32 / TF32 | %.1f / %.1f FLOP/B |\n", c.fp32_flops / c.bandwidth(),
                c.tf32_flops / c.bandwidth());

    std::vector<Piece> pieces;
    statistics(dev, reps, columns, pieces);
    factorisations(dev, reps, pieces);
    solves(dev, reps, pieces);
    information_kernels(dev, reps, columns, pieces);

    std::printf(
        "\nPieces of the step (variant: both = every version of the learner, per-block = one "
        "potrf/potrs per linear block, batched = potrfBatched per size and cublasStrsmBatched per "
        "shape, candidate = neither; calls/step within that variant):\n\n"
        "| piece | shape | variant | calls/step | best ms | median ms | FLOPs | bytes | FLOP/B | "
        "achieved | ceiling | of ceiling | of roofline |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    nlohmann::json rows = nlohmann::json::array();
    double both_ms = 0.0, per_block_ms = 0.0, batched_ms = 0.0;
    for (const Piece& p : pieces) {
      const Rates r = rates_of(p, c);
      const bool memory = p.ceiling == Ceiling::bandwidth;
      std::printf("| %s | %s | %s | %s | %.4f | %.4f | %s | %s | %.2f | %s | %s | %.3f | %.3f |\n",
                  p.name.c_str(), p.shape.c_str(), p.variant.c_str(),
                  p.per_step > 0 ? std::to_string(p.per_step).c_str() : "-", p.time.best_ms,
                  p.time.median_ms, si(p.flops, "").c_str(), si(p.bytes, "B").c_str(), r.intensity,
                  si(r.rate, memory ? "B/s" : "FLOP/s").c_str(), ceiling_name(p.ceiling),
                  r.fraction, r.roofline_fraction);
      const double ms = p.per_step * p.time.best_ms;
      (p.variant == "both"        ? both_ms
       : p.variant == "per-block" ? per_block_ms
                                  : batched_ms) += p.variant == "candidate" ? 0.0 : ms;
      rows.push_back({{"name", p.name},
                      {"shape", p.shape},
                      {"variant", p.variant},
                      {"calls_per_step", p.per_step},
                      {"best_ms", p.time.best_ms},
                      {"median_ms", p.time.median_ms},
                      {"flops", p.flops},
                      {"bytes", p.bytes},
                      {"intensity_flop_per_byte", r.intensity},
                      {"achieved", r.rate},
                      {"achieved_unit", memory ? "byte/s" : "flop/s"},
                      {"ceiling", ceiling_name(p.ceiling)},
                      {"ceiling_value", r.ceiling},
                      {"fraction_of_ceiling", r.fraction},
                      {"roofline_flop_per_s", r.roofline},
                      {"fraction_of_roofline", r.roofline_fraction}});
    }
    report["pieces"] = rows;
    report["ms_per_step"] = {{"per_block_learner", both_ms + per_block_ms},
                             {"batched_learner", both_ms + batched_ms},
                             {"shared_pieces", both_ms}};
    std::printf(
        "\nSum of calls/step x best ms (isolated calls, not measured inside the step): shared "
        "pieces %.3f ms; per-block learner %.3f ms; batched learner %.3f ms per step\n",
        both_ms, both_ms + per_block_ms, both_ms + batched_ms);
    if (!json_path.empty()) {
      std::ofstream file(json_path);
      if (!file) throw std::runtime_error("cannot write --json file " + json_path);
      file << report.dump(2) << "\n";
      std::printf("JSON: %s\n", json_path.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lm_cuda_roofline_bench: %s\n", e.what());
    return 1;
  }
}
