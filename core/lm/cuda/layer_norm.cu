// Layer norm per column: one block per column, two passes (mean, then the centred second
// moment) so that the variance does not suffer the cancellation of E[x^2] - E[x]^2.
#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/block_reduce.cuh"
#include "core/lm/cuda/kernels.cuh"

namespace kwm::lm::cuda::kernels {
namespace {

constexpr int kColumnThreads = 128;

__global__ void layer_norm_kernel(const float* x, const float* gain, const float* bias, float* y,
                                  Index d, float eps) {
  __shared__ float partial[32];
  const Index n = blockIdx.x;
  const float* column = x + n * d;
  float* out = y + n * d;
  float sum = 0.0f;
  for (Index i = threadIdx.x; i < d; i += blockDim.x) sum += column[i];
  const float mean = block_reduce(sum, SumOp{}, partial) / static_cast<float>(d);
  float square = 0.0f;
  for (Index i = threadIdx.x; i < d; i += blockDim.x) {
    const float c = column[i] - mean;
    square += c * c;
  }
  const float variance = block_reduce(square, SumOp{}, partial) / static_cast<float>(d);
  const float inverse_std = rsqrtf(variance + eps);
  for (Index i = threadIdx.x; i < d; i += blockDim.x) {
    out[i] = (column[i] - mean) * inverse_std * gain[i] + bias[i];
  }
}

}  // namespace

void layer_norm(const float* x, const float* gain, const float* bias, float* y, Index d,
                Index columns, float eps, cudaStream_t stream) {
  if (columns == 0) return;
  layer_norm_kernel<<<static_cast<unsigned>(columns), kColumnThreads, 0, stream>>>(x, gain, bias, y,
                                                                                   d, eps);
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace kwm::lm::cuda::kernels
