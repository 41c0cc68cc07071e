// GPU benchmark of the Riccati update (ALGORITHMS.md sections 2 and 4) on the CUDA backend:
// the dense-block step U = P H^T, S = H U + R, S = L L^T, K = U S^-1, P -= (K U^T + U K^T)/2,
// the shared-row RLS step, and a multi-block DEKF step. Times with CUDA events (median of
// repeats after warm-up), counts bytes and flops per kernel, and reports achieved GB/s and
// GFLOP/s against ceilings measured in the same run: device-to-device cudaMemcpy bandwidth
// (bytes read + written) and the cuBLAS SGEMM rate (plain fp32, no TF32) on 8192^3.
//
// usage: riccati_gpu_bench [--json FILE] [--md FILE] [--quick] [--profile N M]
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/backend/cuda/cuda_backend.hpp"
#include "core/backend/cuda/cuda_check.hpp"
#include "core/backend/cuda/kernels.cuh"

namespace {

using kwm::CudaBackend;
using kwm::DowndatePath;
using kwm::Index;
using kwm::Op;
using kwm::Tensor;
using Backend = CudaBackend<float>;

// ---- inputs ------------------------------------------------------------------------------------

__global__ void uniform_kernel(float* x, Index count, unsigned long long seed, float scale) {
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    unsigned long long z = seed + 0x9E3779B97F4A7C15ULL * static_cast<unsigned long long>(i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    x[i] = scale * (static_cast<float>(z >> 40) / 8388608.0f - 1.0f);  // uniform in [-1, 1)
  }
}

void uniform(Backend& be, Tensor<float>& x, unsigned long long seed, float scale) {
  uniform_kernel<<<1024, 256, 0, be.stream()>>>(x.data(), x.size(), seed, scale);
  KWM_CUDA_CHECK_LAUNCH();
}

// A well-conditioned covariance: I + symmetric noise of spectral norm about 0.6.
Tensor<float> covariance(Backend& be, Index n, unsigned long long seed) {
  Tensor<float> p = be.allocate(n, n);
  uniform(be, p, seed, 0.5f / std::sqrt(static_cast<float>(n)));
  be.symmetrize(p);
  be.add_identity(1.0f, p);
  return p;
}

// ---- timing ------------------------------------------------------------------------------------

struct Events {
  explicit Events(int count) : e(count) {
    for (auto& ev : e) KWM_CUDA_CHECK(cudaEventCreate(&ev));
  }
  ~Events() {
    for (auto& ev : e) cudaEventDestroy(ev);
  }
  void record(int i, cudaStream_t s) { KWM_CUDA_CHECK(cudaEventRecord(e[i], s)); }
  double ms(int from, int to) {
    KWM_CUDA_CHECK(cudaEventSynchronize(e[to]));
    float t = 0;
    KWM_CUDA_CHECK(cudaEventElapsedTime(&t, e[from], e[to]));
    return t;
  }
  std::vector<cudaEvent_t> e;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Median time (ms) of body(), each repeat preceded by an untimed prepare().
double time_ms(
    Backend& be, int warmup, int reps, const std::function<void()>& body,
    const std::function<void()>& prepare = [] {}) {
  Events ev(2);
  std::vector<double> t;
  for (int r = 0; r < warmup + reps; ++r) {
    prepare();
    ev.record(0, be.stream());
    body();
    ev.record(1, be.stream());
    const double ms = ev.ms(0, 1);
    if (r >= warmup) t.push_back(ms);
  }
  return median(t);
}

// ---- results -----------------------------------------------------------------------------------

struct Ceilings {
  double copy_gbs = 0;      // device-to-device copy, (read + write) bytes / s
  double sgemm_gflops = 0;  // cuBLAS SGEMM 8192^3
};

struct Row {
  std::string bench, kernel;
  Index n = 0, m = 0, blocks = 1;
  double ms = 0, bytes = 0, flops = 0;
};

std::vector<Row> rows;
Ceilings ceil_;

void add(const std::string& bench, const std::string& kernel, Index n, Index m, double ms,
         double bytes, double flops, Index blocks = 1) {
  rows.push_back({bench, kernel, n, m, blocks, ms, bytes, flops});
}

double gbs(const Row& r) { return r.bytes / (r.ms * 1e-3) / 1e9; }
double gflops(const Row& r) { return r.flops / (r.ms * 1e-3) / 1e9; }

// ---- ceilings ----------------------------------------------------------------------------------

void measure_ceilings(Backend& be) {
  const Index count = Index{1} << 28;  // 1 GiB of floats each way
  Tensor<float> a = be.allocate(count, 1), b = be.allocate(count, 1);
  uniform(be, a, 1, 1.0f);
  const double copy_ms = time_ms(be, 3, 20, [&] {
    KWM_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), count * sizeof(float),
                                   cudaMemcpyDeviceToDevice, be.stream()));
  });
  ceil_.copy_gbs = 2.0 * count * sizeof(float) / (copy_ms * 1e-3) / 1e9;
  add("ceiling", "cudaMemcpy D2D 1 GiB", count, 0, copy_ms, 2.0 * count * sizeof(float), 0);

  const Index n = 8192;
  Tensor<float> x = be.allocate(n, n), y = be.allocate(n, n), z = be.allocate(n, n);
  uniform(be, x, 2, 1.0f);
  uniform(be, y, 3, 1.0f);
  const double gemm_ms =
      time_ms(be, 2, 10, [&] { be.gemm(Op::none, Op::none, 1.0f, x, y, 0.0f, z); });
  const double flops = 2.0 * n * n * n;
  ceil_.sgemm_gflops = flops / (gemm_ms * 1e-3) / 1e9;
  add("ceiling", "cublasSgemm 8192^3 fp32", n, n, gemm_ms, 3.0 * n * n * 4, flops);
  std::printf("ceilings: copy %.0f GB/s (read+write), SGEMM %.0f GFLOP/s\n", ceil_.copy_gbs,
              ceil_.sgemm_gflops);
}

// ---- dense block step --------------------------------------------------------------------------

// One dense-block update with events between phases; downdate variants timed separately on a
// fresh copy of P each repeat.
void dense_step(Backend& be, Index n, Index m, int reps) {
  const double s = sizeof(float);
  Tensor<float> p0 = covariance(be, n, 10 + n + m), p = be.allocate(n, n);
  Tensor<float> h = be.allocate(m, n), r = be.allocate(m, m), u = be.allocate(n, m);
  Tensor<float> sm = be.allocate(m, m), k = be.allocate(n, m);
  uniform(be, h, 20 + m, 1.0f / std::sqrt(static_cast<float>(n)));
  be.add_identity(1.0f, r);

  enum { kStart, kU, kS, kChol, kK, kDown, kCount };
  std::vector<std::vector<double>> t(kCount);
  Events ev(kCount);
  be.set_downdate_path(DowndatePath::automatic);
  for (int rep = 0; rep < reps + 3; ++rep) {
    be.copy(p0, p);
    ev.record(kStart, be.stream());
    be.gemm(Op::none, Op::transpose, 1.0f, p, h, 0.0f, u);  // U = P H^T
    ev.record(kU, be.stream());
    be.copy(r, sm);
    be.gemm(Op::none, Op::none, 1.0f, h, u, 1.0f, sm);  // S = H U + R
    ev.record(kS, be.stream());
    if (!be.cholesky(sm)) std::printf("warning: S not positive definite (n=%ld m=%ld)\n", n, m);
    ev.record(kChol, be.stream());
    be.copy(u, k);
    be.cholesky_solve_right(sm, k);  // K = U S^-1
    ev.record(kK, be.stream());
    be.riccati_downdate(p, k, u);  // P -= (K U^T + U K^T)/2
    ev.record(kDown, be.stream());
    if (rep < 3) continue;
    for (int i = 1; i < kCount; ++i) t[i].push_back(ev.ms(i - 1, i));
    t[0].push_back(ev.ms(kStart, kDown));
  }
  const std::string bench = "dense_step";
  const double nn = static_cast<double>(n) * n, nm = static_cast<double>(n) * m;
  const double tri = 0.5 * static_cast<double>(n) * (n + 1);
  add(bench, "U = P H^T (gemm)", n, m, median(t[kU]), s * (nn + 2 * nm), 2 * nn * m);
  add(bench, "S = H U + R (gemm)", n, m, median(t[kS]), s * (2 * nm + 2.0 * m * m), 2 * nm * m);
  add(bench, "cholesky(S) (potrf)", n, m, median(t[kChol]), s * 2.0 * m * m,
      static_cast<double>(m) * m * m / 3);
  add(bench, "K = U S^-1 (2 trsm)", n, m, median(t[kK]), s * (4 * nm), 2 * nm * m);
  // Bytes: the fewest for a downdate that reads P's lower triangle and writes all of P (plus K
  // and U), whatever the path moves; flops: the useful 2 n^2 m of one triangle of a rank-2m update.
  const double down_bytes = s * (tri + nn + 2 * nm);
  add(bench, "downdate (backend automatic)", n, m, median(t[kDown]), down_bytes, 2 * nn * m);
  add(bench, "whole step", n, m, median(t[0]), s * (nn + tri + nn + 6 * nm),
      4 * nn * m + 4 * nm * m);

  // Every path on the same K and U, same byte and flop counts (see above).
  const std::pair<const char*, DowndatePath> paths[] = {
      {"downdate fused", DowndatePath::fused}, {"downdate syr2k+mirror", DowndatePath::syr2k}};
  for (const auto& [label, path] : paths) {
    be.set_downdate_path(path);
    const double ms = time_ms(
        be, 3, reps, [&] { be.riccati_downdate(p, k, u); }, [&] { be.copy(p0, p); });
    add(bench, label, n, m, ms, down_bytes, 2 * nn * m);
  }
  be.set_downdate_path(DowndatePath::automatic);
  // The straightforward non-symmetric P -= K U^T (what PyTorch does, without its temporary).
  const double gemm_ms = time_ms(
      be, 3, reps, [&] { be.gemm(Op::none, Op::transpose, -1.0f, k, u, 1.0f, p); },
      [&] { be.copy(p0, p); });
  add(bench, "downdate gemm P-=KU^T", n, m, gemm_ms, down_bytes, 2 * nn * m);
  // Fused-kernel variants: tile edge and registers (resident tiles per SM).
  const std::array<std::pair<int, int>, 4> variants = {{{64, 1}, {64, 3}, {64, 4}, {128, 2}}};
  for (const auto& variant : variants) {
    const int tile = variant.first, min_blocks = variant.second;
    const double ms = time_ms(
        be, 3, reps,
        [&] {
          kwm::cuda_kernels::riccati_downdate_fused(p.data(), k.data(), u.data(), n, m, be.stream(),
                                                    tile, min_blocks);
        },
        [&] { be.copy(p0, p); });
    add(bench, "fused tile " + std::to_string(tile) + " minblocks " + std::to_string(min_blocks), n,
        m, ms, down_bytes, 2 * nn * m);
  }
}

// The fused and syr2k paths must agree (same function, different summation order).
void check_paths(Backend& be, Index n, Index m, DowndatePath path, const char* label) {
  Tensor<float> p0 = covariance(be, n, 77), p1 = be.allocate(n, n), p2 = be.allocate(n, n);
  Tensor<float> k = be.allocate(n, m), u = be.allocate(n, m);
  uniform(be, k, 78, 0.1f);
  uniform(be, u, 79, 0.1f);
  be.copy(p0, p1);
  be.copy(p0, p2);
  be.set_downdate_path(path);
  be.riccati_downdate(p1, k, u);
  be.set_downdate_path(DowndatePath::syr2k);
  be.riccati_downdate(p2, k, u);
  be.set_downdate_path(DowndatePath::automatic);
  std::vector<float> a(n * n), b(n * n);
  be.download(p1, a.data());
  be.download(p2, b.data());
  double diff = 0, norm = 0, asym = 0;
  for (Index j = 0; j < n; ++j)
    for (Index i = 0; i < n; ++i) {
      const double x = a[j * n + i], y = b[j * n + i];
      diff += (x - y) * (x - y);
      norm += y * y;
      asym = std::max(asym, std::abs(x - static_cast<double>(a[i * n + j])));
    }
  std::printf(
      "check n=%ld m=%ld: ||%s - syr2k||_F / ||syr2k||_F = %.2e, max |P - P^T| = %.1e, "
      "finite = %d\n",
      n, m, label, std::sqrt(diff / norm), asym, be.all_finite(p1) ? 1 : 0);
}

// ---- shared-row RLS (section 4), one sample
// ------------------------------------------------------

void rls_step(Backend& be, Index d, int reps) {
  const double s = sizeof(float);
  const float r_noise = 1.0f, lambda = 0.999f;
  Tensor<float> p0 = covariance(be, d, 30 + d), p = be.allocate(d, d);
  Tensor<float> a = be.allocate(d, 1), v = be.allocate(d, 1), k = be.allocate(d, 1);
  uniform(be, a, 31, 1.0f);
  // v = P a; k = v / (r lambda + a^T v); P <- (P - k v^T) / lambda  (a^T P = v^T, P symmetric)
  const double ms = time_ms(
      be, 3, reps,
      [&] {
        be.gemm(Op::none, Op::none, 1.0f, p, a, 0.0f, v);
        const float denom = r_noise * lambda + be.dot(a, v);  // host round trip
        be.copy(v, k);
        be.scale(1.0f / denom, k);
        be.riccati_downdate(p, k, v);
        be.scale(1.0f / lambda, p);
      },
      [&] { be.copy(p0, p); });
  const double dd = static_cast<double>(d) * d;
  const double tri = 0.5 * static_cast<double>(d) * (d + 1);
  // P read by the gemv, lower half read + all written by the downdate, read + written by 1/lambda.
  add("rls_step", "v=Pa, dot, downdate, P/=lambda", d, 1, ms, s * (dd + tri + dd + 2 * dd),
      2 * dd + 2 * dd + dd);
}

// ---- multi-block DEKF (section 2 with B blocks)
// --------------------------------------------------

void dekf_step(Backend& be, Index blocks, Index nb, Index m, int reps) {
  const double s = sizeof(float);
  std::vector<Tensor<float>> p0, p, h, u, k;
  for (Index b = 0; b < blocks; ++b) {
    p0.push_back(covariance(be, nb, 40 + b));
    p.push_back(be.allocate(nb, nb));
    h.push_back(be.allocate(m, nb));
    uniform(be, h.back(), 50 + b, 1.0f / std::sqrt(static_cast<float>(nb * blocks)));
    u.push_back(be.allocate(nb, m));
    k.push_back(be.allocate(nb, m));
  }
  Tensor<float> r = be.allocate(m, m), sm = be.allocate(m, m);
  be.add_identity(1.0f, r);
  const double ms = time_ms(
      be, 3, reps,
      [&] {
        be.copy(r, sm);
        for (Index b = 0; b < blocks; ++b) {
          be.gemm(Op::none, Op::transpose, 1.0f, p[b], h[b], 0.0f, u[b]);  // U_b = P_b H_b^T
          be.gemm(Op::none, Op::none, 1.0f, h[b], u[b], 1.0f, sm);         // S += H_b U_b
        }
        if (!be.cholesky(sm)) std::printf("warning: DEKF S not positive definite\n");
        for (Index b = 0; b < blocks; ++b) {
          be.copy(u[b], k[b]);
          be.cholesky_solve_right(sm, k[b]);  // K_b = U_b S^-1
          be.riccati_downdate(p[b], k[b], u[b]);
        }
      },
      [&] {
        for (Index b = 0; b < blocks; ++b) be.copy(p0[b], p[b]);
      });
  const double nn = static_cast<double>(nb) * nb, nm = static_cast<double>(nb) * m;
  const double tri = 0.5 * static_cast<double>(nb) * (nb + 1);
  add("dekf_step", std::to_string(blocks) + " blocks", nb, m, ms,
      blocks * s * (nn + tri + nn + 6 * nm), blocks * (4 * nn * m + 4 * nm * m), blocks);
}

// ---- output ------------------------------------------------------------------------------------

void write_outputs(const std::string& json_path, const std::string& md_path,
                   const cudaDeviceProp& prop) {
  if (!json_path.empty()) {
    FILE* f = std::fopen(json_path.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write " + json_path);
    std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"sms\": %d,\n  \"l2_bytes\": %d,\n", prop.name,
                 prop.multiProcessorCount, prop.l2CacheSize);
    std::fprintf(f, "  \"copy_gbs\": %.1f,\n  \"sgemm_gflops\": %.1f,\n  \"rows\": [\n",
                 ceil_.copy_gbs, ceil_.sgemm_gflops);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::fprintf(f,
                   "    {\"bench\": \"%s\", \"kernel\": \"%s\", \"n\": %ld, \"m\": %ld, "
                   "\"blocks\": %ld, \"ms\": %.5f, \"bytes\": %.0f, \"flops\": %.0f, "
                   "\"gbs\": %.1f, \"gflops\": %.1f}%s\n",
                   r.bench.c_str(), r.kernel.c_str(), r.n, r.m, r.blocks, r.ms, r.bytes, r.flops,
                   gbs(r), gflops(r), i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
  }
  std::string md;
  char line[512];
  std::snprintf(line, sizeof line,
                "Device: %s (%d SMs). Ceilings: copy %.0f GB/s, SGEMM %.0f GFLOP/s.\n\n"
                "| bench | kernel | n | m | ms | GB/s | %% copy | GFLOP/s | %% SGEMM |\n"
                "|---|---|---|---|---|---|---|---|---|\n",
                prop.name, prop.multiProcessorCount, ceil_.copy_gbs, ceil_.sgemm_gflops);
  md += line;
  for (const Row& r : rows) {
    std::snprintf(line, sizeof line, "| %s | %s | %ld | %ld | %.4f | %.0f | %.0f | %.0f | %.0f |\n",
                  r.bench.c_str(), r.kernel.c_str(), r.n, r.m, r.ms, gbs(r),
                  100 * gbs(r) / ceil_.copy_gbs, gflops(r), 100 * gflops(r) / ceil_.sgemm_gflops);
    md += line;
  }
  std::fputs(md.c_str(), stdout);
  if (!md_path.empty()) {
    FILE* f = std::fopen(md_path.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write " + md_path);
    std::fputs(md.c_str(), f);
    std::fclose(f);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path, md_path;
  bool quick = false;
  Index profile_n = 0, profile_m = 0;  // --profile N M: one fused downdate, for ncu
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--profile") && i + 2 < argc) {
      profile_n = std::atol(argv[++i]);
      profile_m = std::atol(argv[++i]);
      continue;
    }
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc)
      json_path = argv[++i];
    else if (!std::strcmp(argv[i], "--md") && i + 1 < argc)
      md_path = argv[++i];
    else if (!std::strcmp(argv[i], "--quick"))
      quick = true;
    else {
      std::fprintf(stderr, "usage: %s [--json FILE] [--md FILE] [--quick] [--profile N M]\n",
                   argv[0]);
      return 2;
    }
  }
  try {
    Backend be;
    cudaDeviceProp prop{};
    KWM_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s, %d SMs, L2 %d MB, %.0f GB global\n", prop.name,
                prop.multiProcessorCount, prop.l2CacheSize >> 20,
                static_cast<double>(prop.totalGlobalMem) / 1e9);
    if (profile_n > 0) {
      Tensor<float> p = covariance(be, profile_n, 1), k = be.allocate(profile_n, profile_m);
      Tensor<float> u = be.allocate(profile_n, profile_m);
      uniform(be, k, 2, 0.1f);
      uniform(be, u, 3, 0.1f);
      be.set_downdate_path(DowndatePath::fused);
      for (int r = 0; r < 3; ++r) be.riccati_downdate(p, k, u);
      be.synchronize();
      return 0;
    }
    measure_ceilings(be);
    check_paths(be, 1000, 37, DowndatePath::fused, "fused");
    check_paths(be, 4096, 64, DowndatePath::fused, "fused");
    check_paths(be, 4096, 256, DowndatePath::fused, "fused");
    const int reps = quick ? 5 : 20;
    const std::vector<Index> ns =
        quick ? std::vector<Index>{1024, 8192} : std::vector<Index>{1024, 2048, 4096, 8192};
    const std::vector<Index> ms =
        quick ? std::vector<Index>{1, 64} : std::vector<Index>{1, 4, 16, 64, 256};
    for (Index n : ns)
      for (Index m : ms) dense_step(be, n, m, reps);
    for (Index d : {256, 512, 1024, 2048, 4096}) rls_step(be, d, reps);
    dekf_step(be, 8, 2048, 16, reps);
    dekf_step(be, 32, 1024, 16, reps);
    dekf_step(be, 4, 4096, 64, reps);
    be.synchronize();
    write_outputs(json_path, md_path, prop);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "riccati_gpu_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
