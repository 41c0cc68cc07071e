// Cache-tiled passes over a symmetric n x n column-major matrix for the CPU backend: mirroring one
// triangle onto the other, symmetrising, and the Riccati downdate P - (K U^T + U K^T) / 2 fused
// with its mirror. Internal to cpu_backend.cpp (not a public header).
//
// Why tiles: element (i, j) and its mirror (j, i) are n * sizeof(T) bytes apart in memory, so an
// element-by-element loop touches a new cache line (and often a new page) on every access of one
// of the two. Working on a pair of kTile x kTile tiles, (i-block, j-block) and its transpose, keeps
// both in L1 and turns the pass into one read and one write of the matrix.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <type_traits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/backend/tensor.hpp"

namespace kwm::cpu {

// 32 x 32 fp64 is 8 KiB per tile, 16 KiB for a pair: L1-resident with room for the operands, and
// 32 columns of a tile touch 32 pages, within the L1 TLB.
inline constexpr Index kTile = 32;
// The fused downdate updates the lower triangle in chunks of kPanelRows x kPanelCols by one GEMM
// call each, then mirrors the chunk tile by tile while it is still in L2 (256 x 64 fp64 is
// 128 KiB). 64 columns rather than 32 give Eigen's GEMM enough width at m = 16 (about 1.3x).
inline constexpr Index kPanelRows = 256;
inline constexpr Index kPanelCols = 64;
// The fused single-pass downdate is used up to this many columns of K and U; above it the update
// is compute-bound and Eigen's triangular GEMM (larger blocking) is the better kernel.
inline constexpr Index kFusedDowndateMaxRank = 16;

// Stores count values from buf to dst. With streaming, the whole 64-byte cache lines of the run go
// through non-temporal stores: they are not read first (no write-allocate), which halves the
// memory traffic of a mirror whose destination is not in cache anyway. Partial lines at either
// end use plain stores (a partial non-temporal line would be a slow read-modify-write in memory).
template <typename T>
void store_run(T* dst, const T* buf, Index count, bool streaming) {
  Index q = 0;
#if defined(__SSE2__)
  if (streaming) {
    constexpr Index lanes = 16 / static_cast<Index>(sizeof(T));
    constexpr Index line = 64 / static_cast<Index>(sizeof(T));
    while (q < count && (reinterpret_cast<std::uintptr_t>(dst + q) & 63) != 0) {
      dst[q] = buf[q];
      ++q;
    }
    for (; q + line <= count; q += line) {
      for (Index v = q; v < q + line; v += lanes) {
        if constexpr (std::is_same_v<T, double>) {
          _mm_stream_pd(dst + v, _mm_loadu_pd(buf + v));
        } else {
          _mm_stream_ps(dst + v, _mm_loadu_ps(buf + v));
        }
      }
    }
  }
#else
  (void)streaming;
#endif
  for (; q < count; ++q) dst[q] = buf[q];
}

// Orders the streaming stores before anything that follows (another thread may read P next).
inline void finish_streaming(bool streaming) {
#if defined(__SSE2__)
  if (streaming) _mm_sfence();
#else
  (void)streaming;
#endif
}

// Streaming pays when the matrix is far larger than the per-core caches: the mirrored lines would
// be evicted before the next pass over P reads them. Below this the plain stores keep them cached.
template <typename T>
bool stream_mirror(Index n) {
  return static_cast<double>(n) * static_cast<double>(n) * sizeof(T) >= 32.0 * 1024 * 1024;
}

// a(j, i) <- a(i, j) for the rows [i0, i1) and columns [j0, j1) of the strictly lower triangle.
template <typename T>
void mirror_tile(T* a, Index n, Index i0, Index i1, Index j0, Index j1, bool streaming) {
  // One row of the lower tile (strided, in L1) is gathered, then written as one contiguous run
  // of column i of the upper triangle.
  alignas(64) T row[kTile];
  for (Index i = i0; i < i1; ++i) {
    const Index jend = std::min(j1, i);  // strictly lower: j < i
    if (jend <= j0) continue;
    for (Index j = j0; j < jend; ++j) row[j - j0] = a[i + j * n];
    store_run(a + i * n + j0, row, jend - j0, streaming);
  }
}

// The strictly upper triangle of the n x n matrix a is overwritten with the lower one, so the
// result is symmetric bit for bit.
template <typename T>
void mirror_lower_to_upper(T* a, Index n) {
  const bool streaming = stream_mirror<T>(n);
  for (Index j0 = 0; j0 < n; j0 += kTile) {
    const Index j1 = std::min(n, j0 + kTile);
    for (Index i0 = j0; i0 < n; i0 += kTile)
      mirror_tile(a, n, i0, std::min(n, i0 + kTile), j0, j1, streaming);
  }
  finish_streaming(streaming);
}

// a <- (a + a^T) / 2: each mean is computed once and written to both (i, j) and (j, i).
template <typename T>
void symmetrize_tiled(T* a, Index n) {
  for (Index j0 = 0; j0 < n; j0 += kTile) {
    const Index j1 = std::min(n, j0 + kTile);
    for (Index i0 = j0; i0 < n; i0 += kTile) {
      const Index i1 = std::min(n, i0 + kTile);
      for (Index i = i0; i < i1; ++i) {
        T* row_as_column = a + i * n;  // a(j, i) for j = 0.., contiguous
        const Index jend = std::min(j1, i);
        for (Index j = j0; j < jend; ++j) {
          const T mean = (a[i + j * n] + row_as_column[j]) / T(2);
          a[i + j * n] = mean;
          row_as_column[j] = mean;
        }
      }
    }
  }
}

// P <- P - (K U^T + U K^T) / 2 = P - W V^T with W = [K U] and V = [U K] / 2 (n x 2m; the halving
// is exact). Only the lower triangle is computed; the upper one is its mirror, so the result is
// symmetric bit for bit.
//
// Small m (memory-bound): one pass over column panels of the lower triangle. Each panel chunk gets
// its rank-2m update from one small GEMM and is mirrored while it is still in cache, so P is read
// once and written once. Large m (compute-bound): Eigen's triangular GEMM on the whole lower
// triangle (one rank-2m product rather than two rank-m ones), then a tiled mirror.
template <typename T>
void riccati_downdate_tiled(T* p, Index n, const T* k, const T* u, Index m) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  using ConstMap = Eigen::Map<const Mat>;
  if (n == 0 || m == 0) return;
  const ConstMap K(k, n, m);
  const ConstMap U(u, n, m);
  Mat w(n, 2 * m);
  Mat v(n, 2 * m);
  w << K, U;
  v << T(0.5) * U, T(0.5) * K;
  Eigen::Map<Mat> P(p, n, n);

  if (m > kFusedDowndateMaxRank) {
    P.template triangularView<Eigen::Lower>() -= w * v.transpose();
    mirror_lower_to_upper(p, n);
    return;
  }
  const bool streaming = stream_mirror<T>(n);
  for (Index j0 = 0; j0 < n; j0 += kPanelCols) {
    const Index jb = std::min(kPanelCols, n - j0);
    for (Index r0 = j0; r0 < n; r0 += kPanelRows) {
      const Index rb = std::min(kPanelRows, n - r0);
      // The chunk's diagonal tile is updated in full; its upper half is overwritten by the mirror.
      P.block(r0, j0, rb, jb).noalias() -= w.middleRows(r0, rb) * v.middleRows(j0, jb).transpose();
      for (Index t0 = j0; t0 < j0 + jb; t0 += kTile)
        for (Index i0 = std::max(r0, t0); i0 < r0 + rb; i0 += kTile)
          mirror_tile(p, n, i0, std::min(r0 + rb, i0 + kTile), t0, std::min(j0 + jb, t0 + kTile),
                      streaming);
    }
  }
  finish_streaming(streaming);
}

}  // namespace kwm::cpu
