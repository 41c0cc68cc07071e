// The kwm-linearized cross terms of one linear block in one pass: B = (1/r) [x; 1] dz^T is the
// transpose of the pass's J_[W b]^T e = [dz x^T, dz 1], scaled. cuBLAS took four launches for it
// (a transposing SGEAM, a copy and a scale of the bias row, a non-finite check) and a fifth to
// copy B into the step the solves overwrite; this kernel writes both copies and raises the flag.
// 32 x 32 tiles through shared memory (padded a column against bank conflicts), so that the
// reads run along the rows of J^T e and the writes along the columns of B, both coalesced.
#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/transpose_kernels.cuh"

namespace kwm::lm::cuda::kernels {
namespace {

constexpr int kTile = 32;
constexpr int kTileRows = 8;

// Source column i < d is weight_t(:, i) (rows x d, leading dimension rows); column d, when
// bias_t is given, is bias_t. Destination (m x rows, leading dimension m): the scaled transpose.
__global__ void cross_terms_kernel(const float* weight_t, const float* bias_t, Index rows, Index d,
                                   Index m, float scale, float* cross, float* step, int* flag) {
  __shared__ float tile[kTile][kTile + 1];
  const Index o0 = static_cast<Index>(blockIdx.x) * kTile;
  const Index i0 = static_cast<Index>(blockIdx.y) * kTile;
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  bool bad = false;
  for (int k = ty; k < kTile; k += kTileRows) {
    const Index o = o0 + tx, i = i0 + k;
    float v = 0.0f;
    if (o < rows && i < m) {
      v = scale * (i < d ? weight_t[o + i * rows] : bias_t[o]);
      bad = bad || !isfinite(v);
    }
    tile[k][tx] = v;
  }
  if (bad) *flag = 1;  // every writer writes the same value
  __syncthreads();
  for (int k = ty; k < kTile; k += kTileRows) {
    const Index i = i0 + tx, o = o0 + k;
    if (i < m && o < rows) {
      const float v = tile[tx][k];
      cross[i + o * m] = v;
      step[i + o * m] = v;
    }
  }
}

}  // namespace

void cross_terms(const float* weight_t, const float* bias_t, Index rows, Index d, float scale,
                 float* cross, float* step, int* flag, cudaStream_t stream) {
  const Index m = d + (bias_t != nullptr ? 1 : 0);
  if (rows == 0 || m == 0) return;
  const dim3 grid(static_cast<unsigned>((rows + kTile - 1) / kTile),
                  static_cast<unsigned>((m + kTile - 1) / kTile));
  const dim3 block(kTile, kTileRows);
  cross_terms_kernel<<<grid, block, 0, stream>>>(weight_t, bias_t, rows, d, m, scale, cross, step,
                                                 flag);
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace kwm::lm::cuda::kernels
