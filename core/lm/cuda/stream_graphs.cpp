// StreamGraphs: capture once per key, then one cudaGraphLaunch per replay; eager on failure.
#include "core/lm/cuda/stream_graphs.hpp"

#include <exception>

#include "core/backend/cuda/cuda_check.hpp"

namespace kwm::lm::cuda {

StreamGraphs::~StreamGraphs() { clear(); }

void StreamGraphs::clear() {
  for (auto& [key, graph] : graphs_) cudaGraphExecDestroy(graph);
  graphs_.clear();
}

void StreamGraphs::set_enabled(bool on) {
  enabled_ = on;
  if (on) return;
  clear();
  refused_.clear();
}

void StreamGraphs::run(const Key& key, cudaStream_t stream, const std::function<void()>& work) {
  if (!enabled_ || refused_.contains(key)) {
    work();
    return;
  }
  const auto found = graphs_.find(key);
  if (found != graphs_.end()) {
    KWM_CUDA_CHECK(cudaGraphLaunch(found->second, stream));
    return;
  }
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  std::string failure;
  KWM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    work();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  // Ends the capture whatever happened inside (an invalidated capture returns an error here).
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  if (failure.empty() && ended != cudaSuccess) failure = cudaGetErrorString(ended);
  if (failure.empty()) {
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    if (made != cudaSuccess) failure = cudaGetErrorString(made);
  }
  if (graph != nullptr) cudaGraphDestroy(graph);
  if (!failure.empty()) {
    (void)cudaGetLastError();  // capture errors are not sticky; clear the last one
    if (exec != nullptr) cudaGraphExecDestroy(exec);
    if (failure_.empty()) failure_ = "CUDA graph capture failed, running eagerly: " + failure;
    refused_.insert(key);
    work();  // nothing ran during the failed capture
    return;
  }
  graphs_.emplace(key, exec);
  KWM_CUDA_CHECK(cudaGraphLaunch(exec, stream));
}

}  // namespace kwm::lm::cuda
