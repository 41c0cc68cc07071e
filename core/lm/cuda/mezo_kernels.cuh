// Launchers for MeZO on the device (mezo_cuda_learner.cpp): the direction z of a step is drawn
// where it is used, z_i = counter_normal(stream, i) (core/lm/learners/counter_random.hpp), so it is
// never stored, and each launcher below regenerates the coordinates it needs. Coordinates u are
// fp64 (the CPU learner's state, exactly); the point a forward pass reads is fp32. Each launcher
// queues on `stream` and checks the launch.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/lm/cuda/kernels.cuh"

namespace kwm::lm::cuda::kernels {

// theta[k] = float(u[at + k] + scale * z_{at + k}) for k < size: one run of parameters (theta
// points at its first entry) that coordinates at..at+size-1 hold.
void perturbed_range(const double* u, Index at, Index size, std::uint64_t stream, double scale,
                     float* theta, cudaStream_t cuda_stream);

// u[i] = decay * u[i] - rate * z_i for i < n: the SPSA step with weight decay.
void mezo_update(double* u, Index n, std::uint64_t stream, double decay, double rate,
                 cudaStream_t cuda_stream);

// out[i] = z_i for i < n (the conformance test's view of the device draws).
void counter_normals(std::uint64_t stream, Index n, double* out, cudaStream_t cuda_stream);

}  // namespace kwm::lm::cuda::kernels
