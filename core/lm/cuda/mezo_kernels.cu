// MeZO's device kernels: grid-stride loops that draw z_i from its counter where they use it.
#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/launch.cuh"
#include "core/lm/cuda/mezo_kernels.cuh"
#include "core/lm/learners/counter_random.hpp"

namespace kwm::lm::cuda::kernels {
namespace {

__device__ inline double z_at(std::uint64_t stream, Index i) {
  return counter_normal(stream, static_cast<std::uint64_t>(i));
}

__global__ void perturbed_range_kernel(const double* u, Index at, Index size, std::uint64_t stream,
                                       double scale, float* theta) {
  for (Index k = global_thread(); k < size; k += grid_threads())
    theta[k] = static_cast<float>(u[at + k] + scale * z_at(stream, at + k));
}

__global__ void mezo_update_kernel(double* u, Index n, std::uint64_t stream, double decay,
                                   double rate) {
  for (Index i = global_thread(); i < n; i += grid_threads())
    u[i] = decay * u[i] - rate * z_at(stream, i);
}

__global__ void counter_normals_kernel(std::uint64_t stream, Index n, double* out) {
  for (Index i = global_thread(); i < n; i += grid_threads()) out[i] = z_at(stream, i);
}

}  // namespace

void perturbed_range(const double* u, Index at, Index size, std::uint64_t stream, double scale,
                     float* theta, cudaStream_t cuda_stream) {
  if (size <= 0) return;
  perturbed_range_kernel<<<grid_for(size), kThreads, 0, cuda_stream>>>(u, at, size, stream, scale,
                                                                       theta);
  KWM_CUDA_CHECK_LAUNCH();
}

void mezo_update(double* u, Index n, std::uint64_t stream, double decay, double rate,
                 cudaStream_t cuda_stream) {
  if (n <= 0) return;
  mezo_update_kernel<<<grid_for(n), kThreads, 0, cuda_stream>>>(u, n, stream, decay, rate);
  KWM_CUDA_CHECK_LAUNCH();
}

void counter_normals(std::uint64_t stream, Index n, double* out, cudaStream_t cuda_stream) {
  if (n <= 0) return;
  counter_normals_kernel<<<grid_for(n), kThreads, 0, cuda_stream>>>(stream, n, out);
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace kwm::lm::cuda::kernels
