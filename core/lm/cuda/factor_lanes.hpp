// FactorLanes: the Cholesky factors of a few large matrices at once, each by cuSOLVER's blocked
// potrf on a stream (and handle, and workspace) of its own, forked from an origin stream and joined
// back to it by events, so that the whole is one stream-ordered step and can be captured in a CUDA
// graph. Why: cusolverDnSpotrfBatched works in 16-wide panels with a grid of one block per matrix
// per tile, so for 12 matrices of order 1025 it kept a few dozen blocks busy for 2.6 ms of an H100
// (bench/lm_cuda/profile_step_device.sh, 2026-12-07); the blocked potrf of one such matrix
// leaves most of the GPU idle too, so several side by side fill it instead.
#pragma once

#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <vector>

#include "core/lm/cuda/device_buffer.hpp"

namespace kwm::lm::cuda {

class FactorLanes {
 public:
  struct Matrix {
    float* a = nullptr;  // n x n, leading dimension n; the lower triangle becomes F (F F^T = A)
    int n = 0;
    int* info = nullptr;  // device int: potrf's info (0, or the order of the failing minor)
  };

  FactorLanes() = default;
  FactorLanes(const FactorLanes&) = delete;
  FactorLanes& operator=(const FactorLanes&) = delete;
  ~FactorLanes();

  // One lane per matrix, with its workspace sized now (nothing is allocated while factoring).
  void plan(const std::vector<Matrix>& matrices);
  bool empty() const { return lanes_.empty(); }
  std::size_t size() const { return lanes_.size(); }

  // Queues every planned factorisation after the work already on `origin`; `origin` continues
  // once all of them are done.
  void factor(cudaStream_t origin);

 private:
  struct Lane {
    Matrix matrix;
    cudaStream_t stream = nullptr;
    cusolverDnHandle_t solver = nullptr;
    cudaEvent_t done = nullptr;
    DeviceBuffer<float> workspace;
    int workspace_size = 0;
  };
  std::vector<Lane> lanes_;
  cudaEvent_t fork_ = nullptr;
};

}  // namespace kwm::lm::cuda
