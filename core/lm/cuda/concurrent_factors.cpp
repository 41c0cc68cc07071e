// ConcurrentFactors: side streams forked from and joined to the caller's stream by events.
#include "core/lm/cuda/concurrent_factors.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/host_checks.hpp"

namespace kwm::lm::cuda {

ConcurrentFactors::ConcurrentFactors(int streams, std::int64_t largest) : largest_(largest) {
  if (streams < 1) throw std::invalid_argument("ConcurrentFactors: needs at least one stream");
  if (largest < 1) throw std::invalid_argument("ConcurrentFactors: the largest order must be >= 1");
  KWM_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
  lanes_.resize(static_cast<std::size_t>(streams));
  DeviceBuffer<float> probe;
  probe.reserve(as_size(largest * largest));
  for (Lane& lane : lanes_) {
    KWM_CUDA_CHECK(cudaStreamCreateWithFlags(&lane.stream, cudaStreamNonBlocking));
    KWM_CUSOLVER_CHECK(cusolverDnCreate(&lane.solver));
    KWM_CUSOLVER_CHECK(cusolverDnSetStream(lane.solver, lane.stream));
    KWM_CUDA_CHECK(cudaEventCreateWithFlags(&lane.done, cudaEventDisableTiming));
    int floats = 0;
    KWM_CUSOLVER_CHECK(cusolverDnSpotrf_bufferSize(lane.solver, CUBLAS_FILL_MODE_LOWER,
                                                   static_cast<int>(largest), probe.data(),
                                                   static_cast<int>(largest), &floats));
    lane.workspace.reserve(as_size(std::max(floats, 1)));
  }
}

ConcurrentFactors::~ConcurrentFactors() {
  for (Lane& lane : lanes_) {
    if (lane.done != nullptr) cudaEventDestroy(lane.done);
    if (lane.solver != nullptr) cusolverDnDestroy(lane.solver);
    if (lane.stream != nullptr) cudaStreamDestroy(lane.stream);
  }
  if (fork_ != nullptr) cudaEventDestroy(fork_);
}

void ConcurrentFactors::queue(cudaStream_t origin, const std::vector<Job>& jobs) {
  if (jobs.empty()) return;
  const std::size_t used = std::min(lanes_.size(), jobs.size());
  KWM_CUDA_CHECK(cudaEventRecord(fork_, origin));
  for (std::size_t l = 0; l < used; ++l)
    KWM_CUDA_CHECK(cudaStreamWaitEvent(lanes_[l].stream, fork_, 0));
  for (std::size_t k = 0; k < jobs.size(); ++k) {
    const Job& job = jobs[k];
    if (job.m > largest_)
      throw std::invalid_argument("ConcurrentFactors: a factor of order " + std::to_string(job.m) +
                                  " exceeds the workspaces' " + std::to_string(largest_));
    Lane& lane = lanes_[k % used];
    const int n = static_cast<int>(job.m);
    KWM_CUSOLVER_CHECK(cusolverDnSpotrf(lane.solver, CUBLAS_FILL_MODE_LOWER, n, job.matrix, n,
                                        lane.workspace.data(),
                                        static_cast<int>(lane.workspace.capacity()), job.info));
  }
  for (std::size_t l = 0; l < used; ++l) {
    KWM_CUDA_CHECK(cudaEventRecord(lanes_[l].done, lanes_[l].stream));
    KWM_CUDA_CHECK(cudaStreamWaitEvent(origin, lanes_[l].done, 0));
  }
}

}  // namespace kwm::lm::cuda
