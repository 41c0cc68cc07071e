#include "core/lm/cuda/factor_lanes.hpp"

#include <algorithm>

#include "core/backend/cuda/cuda_check.hpp"

namespace kwm::lm::cuda {

FactorLanes::~FactorLanes() {
  for (Lane& lane : lanes_) {
    if (lane.solver != nullptr) cusolverDnDestroy(lane.solver);
    if (lane.done != nullptr) cudaEventDestroy(lane.done);
    if (lane.stream != nullptr) cudaStreamDestroy(lane.stream);
  }
  if (fork_ != nullptr) cudaEventDestroy(fork_);
}

void FactorLanes::plan(const std::vector<Matrix>& matrices) {
  if (fork_ == nullptr) KWM_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
  lanes_.reserve(lanes_.size() + matrices.size());
  for (const Matrix& m : matrices) {
    Lane& lane = lanes_.emplace_back();
    lane.matrix = m;
    KWM_CUDA_CHECK(cudaStreamCreateWithFlags(&lane.stream, cudaStreamNonBlocking));
    KWM_CUDA_CHECK(cudaEventCreateWithFlags(&lane.done, cudaEventDisableTiming));
    KWM_CUSOLVER_CHECK(cusolverDnCreate(&lane.solver));
    KWM_CUSOLVER_CHECK(cusolverDnSetStream(lane.solver, lane.stream));
    KWM_CUSOLVER_CHECK(cusolverDnSpotrf_bufferSize(lane.solver, CUBLAS_FILL_MODE_LOWER, m.n, m.a,
                                                   m.n, &lane.workspace_size));
    lane.workspace.reserve(static_cast<std::size_t>(std::max(lane.workspace_size, 1)));
  }
}

void FactorLanes::factor(cudaStream_t origin) {
  if (lanes_.empty()) return;
  KWM_CUDA_CHECK(cudaEventRecord(fork_, origin));
  for (Lane& lane : lanes_) {
    KWM_CUDA_CHECK(cudaStreamWaitEvent(lane.stream, fork_, 0));
    KWM_CUSOLVER_CHECK(cusolverDnSpotrf(lane.solver, CUBLAS_FILL_MODE_LOWER, lane.matrix.n,
                                        lane.matrix.a, lane.matrix.n, lane.workspace.data(),
                                        lane.workspace_size, lane.matrix.info));
    KWM_CUDA_CHECK(cudaEventRecord(lane.done, lane.stream));
  }
  for (const Lane& lane : lanes_) KWM_CUDA_CHECK(cudaStreamWaitEvent(origin, lane.done, 0));
}

}  // namespace kwm::lm::cuda
