// Layer norm per column: one block per column, two passes (mean, then the centred second
// moment) so that the variance does not suffer the cancellation of E[x^2] - E[x]^2. The forward
// pass's version and the transposed pass's (which also keeps xhat and 1/std) are one kernel.
#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/block_reduce.cuh"
#include "core/lm/cuda/kernels.cuh"
#include "core/lm/cuda/transpose_kernels.cuh"

namespace kwm::lm::cuda::kernels {
namespace {

constexpr int kColumnThreads = 128;

// kCache: also xhat = (x - mean) / std (d x N) and 1/std per column (N), for the transpose.
template <bool kCache>
__global__ void layer_norm_kernel(const float* x, const float* gain, const float* bias, float* y,
                                  float* xhat, float* inverse_std, Index d, float eps) {
  __shared__ float partial[32];
  const Index n = blockIdx.x;
  const float* column = x + n * d;
  float sum = 0.0f;
  for (Index i = threadIdx.x; i < d; i += blockDim.x) sum += column[i];
  const float mean = block_reduce(sum, SumOp{}, partial) / static_cast<float>(d);
  float square = 0.0f;
  for (Index i = threadIdx.x; i < d; i += blockDim.x) {
    const float c = column[i] - mean;
    square += c * c;
  }
  const float variance = block_reduce(square, SumOp{}, partial) / static_cast<float>(d);
  const float inv = rsqrtf(variance + eps);
  for (Index i = threadIdx.x; i < d; i += blockDim.x) {
    const float h = (column[i] - mean) * inv;
    if constexpr (kCache) xhat[n * d + i] = h;
    y[n * d + i] = h * gain[i] + bias[i];
  }
  if constexpr (kCache) {
    if (threadIdx.x == 0) inverse_std[n] = inv;
  }
}

}  // namespace

void layer_norm(const float* x, const float* gain, const float* bias, float* y, Index d,
                Index columns, float eps, cudaStream_t stream) {
  if (columns == 0) return;
  layer_norm_kernel<false><<<static_cast<unsigned>(columns), kColumnThreads, 0, stream>>>(
      x, gain, bias, y, nullptr, nullptr, d, eps);
  KWM_CUDA_CHECK_LAUNCH();
}

void layer_norm_cached(const float* x, const float* gain, const float* bias, float* y, float* xhat,
                       float* inverse_std, Index d, Index columns, float eps, cudaStream_t stream) {
  if (columns == 0) return;
  layer_norm_kernel<true><<<static_cast<unsigned>(columns), kColumnThreads, 0, stream>>>(
      x, gain, bias, y, xhat, inverse_std, d, eps);
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace kwm::lm::cuda::kernels
