// The fused covariance downdate P <- P - (K U^T + U K^T)/2 of ALGORITHMS.md section 2.
// One block per lower tile of P: K and U rows of the tile go through shared memory in chunks of
// kChunk columns, each thread accumulates a micro-tile in registers, then the tile of P is read
// once, updated, written, and its transpose written from the same values (staged in shared
// memory so both writes are coalesced). P's strict upper triangle is never read: the result is
// exactly symmetric, and the pass moves 1.5 n^2 values instead of gemm's 2 n^2 plus a
// symmetrisation pass.
#include <algorithm>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/backend/cuda/kernels.cuh"

namespace kwm::cuda_kernels {
namespace {

constexpr int kThreads = 256;  // 16 x 16 threads per tile
constexpr int kChunk = 8;      // columns of K and U staged per step

// Four consecutive values from aligned shared memory as wide loads.
__device__ inline void load4(const float* src, float (&v)[4]) {
  const float4 q = *reinterpret_cast<const float4*>(src);
  v[0] = q.x;
  v[1] = q.y;
  v[2] = q.z;
  v[3] = q.w;
}
__device__ inline void load4(const double* src, double (&v)[4]) {
  const double2 q0 = *reinterpret_cast<const double2*>(src);
  const double2 q1 = *reinterpret_cast<const double2*>(src + 2);
  v[0] = q0.x;
  v[1] = q0.y;
  v[2] = q1.x;
  v[3] = q1.y;
}
__device__ inline void store4(float* dst, const float (&v)[4]) {
  *reinterpret_cast<float4*>(dst) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ inline void store4(double* dst, const double (&v)[4]) {
  *reinterpret_cast<double2*>(dst) = make_double2(v[0], v[1]);
  *reinterpret_cast<double2*>(dst + 2) = make_double2(v[2], v[3]);
}

template <typename T, int BM>
constexpr std::size_t shared_bytes() {
  const std::size_t operands = 4ull * kChunk * BM * sizeof(T);
  const std::size_t stage = static_cast<std::size_t>(BM) * (BM + 1) * sizeof(T);
  return operands > stage ? operands : stage;
}

// One matrix (p, k, u), or with ps set the batch's matrix blockIdx.y from device pointer arrays.
template <typename T>
struct Operands {
  T* p = nullptr;
  const T* k = nullptr;
  const T* u = nullptr;
  T* const* ps = nullptr;
  const T* const* ks = nullptr;
  const T* const* us = nullptr;
};

// Thread (tx, ty) owns rows 64h + 4tx + i and columns 64g + 4ty + j of the tile (h, g < BM/64,
// i, j < 4): contiguous groups of four, so shared and global accesses are 16-byte wide.
template <typename T, int BM, bool kPrefetch, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    riccati_downdate_kernel(Operands<T> operands, Index n, Index m, bool vector_io) {
  T* __restrict__ p = operands.ps ? operands.ps[blockIdx.y] : operands.p;
  const T* __restrict__ k = operands.ps ? operands.ks[blockIdx.y] : operands.k;
  const T* __restrict__ u = operands.ps ? operands.us[blockIdx.y] : operands.u;
  constexpr int kGroups = BM / 64;  // groups of four rows (columns) per thread
  constexpr int kTm = 4 * kGroups;  // rows (columns) per thread
  extern __shared__ __align__(16) unsigned char shared_raw[];
  T* shared = reinterpret_cast<T*>(shared_raw);
  T* k_rows = shared;                // [kChunk][BM]: K(row0 + r, l0 + l)
  T* u_rows = k_rows + kChunk * BM;  // U(row0 + r, l0 + l)
  T* k_cols = u_rows + kChunk * BM;  // K(col0 + c, l0 + l)
  T* u_cols = k_cols + kChunk * BM;  // U(col0 + c, l0 + l)
  T* stage = shared;                 // [BM][BM + 1], stage[c][r], reused after the products

  // Block b -> lower tile (ti, tj), b = ti (ti + 1) / 2 + tj.
  const Index b = blockIdx.x;
  Index ti = static_cast<Index>((sqrt(8.0 * static_cast<double>(b) + 1.0) - 1.0) / 2.0);
  while (ti * (ti + 1) / 2 > b) --ti;
  while ((ti + 1) * (ti + 2) / 2 <= b) ++ti;
  const Index tj = b - ti * (ti + 1) / 2;
  const Index row0 = ti * BM;
  const Index col0 = tj * BM;
  const int tid = threadIdx.x;
  const int tx = tid % 16;
  const int ty = tid / 16;

  // P(row, col) for this thread's group (h, column b): four rows at once where aligned.
  auto load_p = [&](int h, int jb, T(&v)[4]) {
    const Index gr = row0 + 64 * h + 4 * tx;
    const Index gc = col0 + 64 * (jb / 4) + 4 * ty + (jb % 4);
    if (gc >= n) return;
    if (vector_io && gr + 3 < n) {
      load4(p + gc * n + gr, v);
    } else {
      for (int i = 0; i < 4; ++i) v[i] = gr + i < n ? p[gc * n + gr + i] : T(0);
    }
  };

  T pv[kPrefetch ? kGroups : 1][kPrefetch ? kTm : 1][4];
  if constexpr (kPrefetch) {
#pragma unroll
    for (int h = 0; h < kGroups; ++h)
#pragma unroll
      for (int jb = 0; jb < kTm; ++jb) load_p(h, jb, pv[h][jb]);
  }

  T acc[kTm][kTm];
#pragma unroll
  for (int a = 0; a < kTm; ++a)
#pragma unroll
    for (int c = 0; c < kTm; ++c) acc[a][c] = T(0);

  for (Index l0 = 0; l0 < m; l0 += kChunk) {
#pragma unroll
    for (int s = 0; s < kChunk * BM / kThreads; ++s) {
      const int idx = tid + kThreads * s;
      const int r = idx % BM;
      const int l = idx / BM;
      const Index gl = l0 + l;
      const bool in_l = gl < m;
      k_rows[idx] = in_l && row0 + r < n ? k[gl * n + row0 + r] : T(0);
      u_rows[idx] = in_l && row0 + r < n ? u[gl * n + row0 + r] : T(0);
      k_cols[idx] = in_l && col0 + r < n ? k[gl * n + col0 + r] : T(0);
      u_cols[idx] = in_l && col0 + r < n ? u[gl * n + col0 + r] : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int l = 0; l < kChunk; ++l) {
      T kr[kTm], ur[kTm], kc[kTm], uc[kTm];
#pragma unroll
      for (int h = 0; h < kGroups; ++h) {
        load4(k_rows + l * BM + 64 * h + 4 * tx, *reinterpret_cast<T(*)[4]>(kr + 4 * h));
        load4(u_rows + l * BM + 64 * h + 4 * tx, *reinterpret_cast<T(*)[4]>(ur + 4 * h));
        load4(k_cols + l * BM + 64 * h + 4 * ty, *reinterpret_cast<T(*)[4]>(kc + 4 * h));
        load4(u_cols + l * BM + 64 * h + 4 * ty, *reinterpret_cast<T(*)[4]>(uc + 4 * h));
      }
#pragma unroll
      for (int a = 0; a < kTm; ++a)
#pragma unroll
        for (int c = 0; c < kTm; ++c) acc[a][c] += kr[a] * uc[c] + ur[a] * kc[c];
    }
    __syncthreads();
  }

  // P_tile - acc/2: write the tile, keep the values for the transposed write.
  const T half = T(0.5);
#pragma unroll
  for (int h = 0; h < kGroups; ++h) {
#pragma unroll
    for (int jb = 0; jb < kTm; ++jb) {
      const int r0 = 64 * h + 4 * tx;
      const int c = 64 * (jb / 4) + 4 * ty + (jb % 4);
      const Index gr = row0 + r0;
      const Index gc = col0 + c;
      if (gc >= n || gr >= n) continue;
      T v[4];
      if constexpr (kPrefetch) {
#pragma unroll
        for (int i = 0; i < 4; ++i) v[i] = pv[h][jb][i];
      } else {
        load_p(h, jb, v);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        v[i] -= half * acc[4 * h + i][jb];
        stage[c * (BM + 1) + r0 + i] = v[i];
      }
      // On diagonal tiles this also writes upper entries; the transposed write below replaces
      // them (after the barrier) with the lower values, so P comes out exactly symmetric.
      if (vector_io && gr + 3 < n) {
        store4(p + gc * n + gr, v);
      } else {
        for (int i = 0; i < 4; ++i)
          if (gr + i < n) p[gc * n + gr + i] = v[i];
      }
    }
  }
  __syncthreads();
  // Transposed write: P(col0 + c, row0 + r) = stage[c][r] for row0 + r > col0 + c; consecutive
  // threads take consecutive c, i.e. consecutive addresses of column row0 + r.
  for (int idx = tid; idx < BM * BM; idx += kThreads) {
    const int c = idx % BM;
    const int r = idx / BM;
    const Index gr = row0 + r;
    const Index gc = col0 + c;
    if (gr < n && gc < n && gr > gc) p[gr * n + gc] = stage[c * (BM + 1) + r];
  }
}

template <typename T, int BM, bool kPrefetch, int kMinBlocks>
void launch(const Operands<T>& operands, Index count, Index n, Index m, cudaStream_t stream) {
  constexpr std::size_t bytes = shared_bytes<T, BM>();
  static const bool configured = [] {
    KWM_CUDA_CHECK(cudaFuncSetAttribute(riccati_downdate_kernel<T, BM, kPrefetch, kMinBlocks>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
    return true;
  }();
  (void)configured;
  const Index tiles = (n + BM - 1) / BM;
  const Index blocks = tiles * (tiles + 1) / 2;
  const bool vector_io = n % 4 == 0;
  const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(count));
  riccati_downdate_kernel<T, BM, kPrefetch, kMinBlocks>
      <<<grid, kThreads, bytes, stream>>>(operands, n, m, vector_io);
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace

template <typename T>
void riccati_downdate_fused(T* p, const T* k, const T* u, Index n, Index m, cudaStream_t stream,
                            int tile, int min_blocks) {
  if (n == 0 || m == 0) return;
  Operands<T> operands;
  operands.p = p;
  operands.k = k;
  operands.u = u;
  // Default: 64-wide tiles capped at 64 registers (4 tiles per SM), the fastest variant measured
  // on an H200 for m = 1..64 at n = 4096..8192 (docs/gpu-results.md); 128-wide tiles reuse each
  // staged value 8 times per thread but hold fewer tiles in flight, and measured no faster.
  // Doubles always take 64-wide tiles (an 8x8 double accumulator would spill).
  if constexpr (sizeof(T) == 8) {
    launch<T, 64, true, 1>(operands, 1, n, m, stream);
  } else {
    if (tile == 0) tile = 64;
    if (min_blocks == 0) min_blocks = 4;
    if (tile == 128) {
      launch<T, 128, false, 2>(operands, 1, n, m, stream);
    } else if (min_blocks >= 4) {
      launch<T, 64, true, 4>(operands, 1, n, m, stream);  // 64 registers: more tiles in flight
    } else if (min_blocks == 3) {
      launch<T, 64, true, 3>(operands, 1, n, m, stream);  // 80 registers
    } else {
      launch<T, 64, true, 1>(operands, 1, n, m, stream);
    }
  }
}

template <typename T>
void riccati_downdate_fused_batched(T* const* p, const T* const* k, const T* const* u, Index count,
                                    Index n, Index m, cudaStream_t stream) {
  if (count == 0 || n == 0 || m == 0) return;
  Operands<T> operands;
  operands.ps = p;
  operands.ks = k;
  operands.us = u;
  // The single-matrix defaults above.
  if constexpr (sizeof(T) == 8) {
    launch<T, 64, true, 1>(operands, count, n, m, stream);
  } else {
    launch<T, 64, true, 4>(operands, count, n, m, stream);
  }
}

template void riccati_downdate_fused<float>(float*, const float*, const float*, Index, Index,
                                            cudaStream_t, int, int);
template void riccati_downdate_fused<double>(double*, const double*, const double*, Index, Index,
                                             cudaStream_t, int, int);
template void riccati_downdate_fused_batched<float>(float* const*, const float* const*,
                                                    const float* const*, Index, Index, Index,
                                                    cudaStream_t);
template void riccati_downdate_fused_batched<double>(double* const*, const double* const*,
                                                     const double* const*, Index, Index, Index,
                                                     cudaStream_t);

}  // namespace kwm::cuda_kernels
