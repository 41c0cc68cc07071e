// Grid helpers shared by the GPT kernels: grid-stride loops over a flat index range.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>

#include "core/lm/cuda/kernels.cuh"

namespace kwm::lm::cuda::kernels {

constexpr int kThreads = 256;

inline unsigned grid_for(Index count) {
  const Index blocks = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::clamp<Index>(blocks, 1, 65535));
}

__device__ inline Index global_thread() {
  return static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline Index grid_threads() { return static_cast<Index>(gridDim.x) * blockDim.x; }

}  // namespace kwm::lm::cuda::kernels
