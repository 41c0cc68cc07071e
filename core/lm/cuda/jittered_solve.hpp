// The escalating-jitter retry of shared_row_information's jittered_llt on the device, for a block
// whose Cholesky factor failed: j = initial_relative * trace(A)/m * growth^k for k < max_retries,
// each attempt factoring A + j I and waiting on the host (a rare path: the prior keeps A positive
// definite unless the statistics are degenerate). rls-head and kwm-linearized both call it.
#pragma once

#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <cstdint>

#include "core/kalman/config.hpp"
#include "core/lm/cuda/device_buffer.hpp"

namespace kwm::lm::cuda {

// A cuSOLVER handle bound to `stream` (every copy and wait below is on it) and its potrf
// workspace.
struct DeviceSolver {
  cusolverDnHandle_t handle = nullptr;
  cudaStream_t stream = nullptr;
  float* workspace = nullptr;
  int workspace_floats = 0;
};

// The solver over all of `workspace` (reserved by the caller from potrf's buffer size).
inline DeviceSolver device_solver(cusolverDnHandle_t handle, cudaStream_t stream,
                                  DeviceBuffer<float>& workspace) {
  return {handle, stream, workspace.data(), static_cast<int>(workspace.capacity())};
}

// A m x m (column-major, lower triangle used) with rhs right-hand sides. Once an attempt factors,
// A holds A + j I (the matrix the step was solved with, kept whether or not the step is finite),
// factor its Cholesky factor and step the solution.
struct JitteredSystem {
  std::int64_t m = 0;
  std::int64_t rhs = 0;
  float* information = nullptr;  // A, m x m
  const float* cross = nullptr;  // the right-hand sides, m x rhs
  float* factor = nullptr;       // m x m
  float* step = nullptr;         // m x rhs
  int* factor_info = nullptr;    // device words: potrf's info, potrs's info, the non-finite flag
  int* solve_info = nullptr;     // (the flag must be zero on entry)
  int* nonfinite = nullptr;
};

// True when a jittered factor succeeded and its step is finite. Adds the attempts made to
// `attempts`.
bool solve_with_jitter(const DeviceSolver& solver, const JitterConfig& jitter,
                       const JitteredSystem& system, int& attempts);

}  // namespace kwm::lm::cuda
