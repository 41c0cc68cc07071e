// Block-wide reductions for the per-column kernels: warp shuffles, then the warps' partials
// combined in a fixed order (so a result does not depend on scheduling). blockDim.x must be a
// multiple of 32 and at most 1024; every thread gets the result.
#pragma once

#include <cuda_runtime.h>

namespace kwm::lm::cuda::kernels {

struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};

struct MaxOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a > b ? a : b;
  }
};

template <typename T, typename Op>
__device__ T warp_reduce(T value, Op op) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    value = op(value, __shfl_xor_sync(0xffffffffu, value, offset));
  }
  return value;
}

// `shared` holds at least 32 T. Safe to call repeatedly with the same `shared`.
template <typename T, typename Op>
__device__ T block_reduce(T value, Op op, T* shared) {
  value = warp_reduce(value, op);
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  __syncthreads();  // an earlier call's readers are done with `shared`
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  T result = shared[0];
  const int warps = static_cast<int>(blockDim.x) >> 5;
  for (int w = 1; w < warps; ++w) result = op(result, shared[w]);
  return result;
}

}  // namespace kwm::lm::cuda::kernels
