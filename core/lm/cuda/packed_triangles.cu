// Packing the lower triangle of a symmetric m x m matrix (column-major) into m (m + 1) / 2 floats
// and back, for the all-reduce of kwm-linearized's statistics over several ranks: S = (1/r) a a^T
// is symmetric and only its lower triangle is read (L' and potrf use the lower triangle), so the
// ranks need to sum only half of it. Packed order: column j's entries j..m-1, column after column
// (LAPACK's 'L' packed storage). A copy, so exact.
#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/launch.cuh"
#include "core/lm/cuda/transpose_kernels.cuh"

namespace kwm::lm::cuda::kernels {
namespace {

constexpr int kTile = 32;
constexpr int kTileRows = 8;

// Where column j of the lower triangle starts in the packed order: the columns before it hold
// m + (m - 1) + ... + (m - j + 1) = j m - j (j - 1) / 2 entries.
__device__ inline Index column_start(Index j, Index m) { return j * m - j * (j - 1) / 2; }

// 32 x 32 tiles of (row i, column j), threads along i: reads of `full` and writes of `packed` are
// both runs along a column. Tiles wholly above the diagonal return at once.
__global__ void pack_lower_kernel(const float* full, Index m, float* packed) {
  const Index i0 = static_cast<Index>(blockIdx.x) * kTile;
  const Index j0 = static_cast<Index>(blockIdx.y) * kTile;
  if (i0 + kTile <= j0) return;
  const Index i = i0 + threadIdx.x;
  for (int k = static_cast<int>(threadIdx.y); k < kTile; k += kTileRows) {
    const Index j = j0 + k;
    if (i < m && j < m && i >= j) packed[column_start(j, m) + (i - j)] = full[i + j * m];
  }
}

// The inverse, writing both triangles: full(i, j) = full(j, i) = the packed (i, j), i >= j. The
// transposed writes go through a shared tile so that they also run along columns.
__global__ void unpack_symmetric_kernel(const float* packed, Index m, float* full) {
  __shared__ float tile[kTile][kTile + 1];
  const Index i0 = static_cast<Index>(blockIdx.x) * kTile;
  const Index j0 = static_cast<Index>(blockIdx.y) * kTile;
  if (i0 + kTile <= j0) return;
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  for (int k = ty; k < kTile; k += kTileRows) {
    const Index i = i0 + tx, j = j0 + k;
    float v = 0.0f;
    if (i < m && j < m && i >= j) {
      v = packed[column_start(j, m) + (i - j)];
      full[i + j * m] = v;
    }
    tile[k][tx] = v;
  }
  __syncthreads();
  // Upper triangle: full(j, i) for the same (i, j), i > j; thread tx now runs along j.
  for (int k = ty; k < kTile; k += kTileRows) {
    const Index j = j0 + tx, i = i0 + k;
    if (i < m && j < m && i > j) full[j + i * m] = tile[tx][k];
  }
}

dim3 tiles(Index m) {
  const auto n = static_cast<unsigned>((m + kTile - 1) / kTile);
  return dim3(n, n);
}

}  // namespace

void pack_lower(const float* full, Index m, float* packed, cudaStream_t stream) {
  if (m == 0) return;
  pack_lower_kernel<<<tiles(m), dim3(kTile, kTileRows), 0, stream>>>(full, m, packed);
  KWM_CUDA_CHECK_LAUNCH();
}

void unpack_symmetric(const float* packed, Index m, float* full, cudaStream_t stream) {
  if (m == 0) return;
  unpack_symmetric_kernel<<<tiles(m), dim3(kTile, kTileRows), 0, stream>>>(packed, m, full);
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace kwm::lm::cuda::kernels
