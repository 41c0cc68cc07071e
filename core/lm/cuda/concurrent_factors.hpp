// Cholesky factors of large blocks on several streams at once. One cusolverDnSpotrf of an order
// 1025 block keeps a small part of an H100 busy (0.35 ms, 2% of the SGEMM rate; docs/
// performance.md, "Roofline"), and cusolverDnSpotrfBatched over twelve of them reaches only
// 4.8%; independent factors on streams of their own can run side by side instead. Each stream has
// its own cuSOLVER handle and workspace (one handle's workspace must not serve two streams at
// once). queue() forks from and joins back to the caller's stream with events, so it can be
// captured into a CUDA graph like any other work on that stream.
#pragma once

#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <cstdint>
#include <vector>

#include "core/lm/cuda/device_buffer.hpp"

namespace kwm::lm::cuda {

class ConcurrentFactors {
 public:
  // One factor job: A (m x m, column-major, lower triangle read) becomes its Cholesky factor in
  // place; potrf's info goes to `info` (device int).
  struct Job {
    std::int64_t m = 0;
    float* matrix = nullptr;
    int* info = nullptr;
  };

  // `streams` side streams, each with a workspace for factors of order up to `largest`.
  ConcurrentFactors(int streams, std::int64_t largest);
  ~ConcurrentFactors();
  ConcurrentFactors(const ConcurrentFactors&) = delete;
  ConcurrentFactors& operator=(const ConcurrentFactors&) = delete;

  // Job k on side stream k mod streams, after the work already on `origin`; `origin` continues
  // once every job is done.
  void queue(cudaStream_t origin, const std::vector<Job>& jobs);

  int streams() const { return static_cast<int>(lanes_.size()); }

 private:
  struct Lane {
    cudaStream_t stream = nullptr;
    cusolverDnHandle_t solver = nullptr;
    cudaEvent_t done = nullptr;
    DeviceBuffer<float> workspace;
  };
  std::vector<Lane> lanes_;
  std::int64_t largest_ = 0;
  cudaEvent_t fork_ = nullptr;
};

}  // namespace kwm::lm::cuda
