// StreamGraphs: replays a fixed sequence of queued device work as a CUDA graph. The learner's
// step queues several hundred small cuBLAS calls, kernels and copies per phase; launched one by
// one their host cost exceeds their device time, so the device waits on the host (phase timings
// in docs/gpu-lm.md). Captured once per key (the batch shape and every device pointer the work
// reads, so a reallocated buffer gets a new graph) and then launched as one graph, the same work
// costs one launch.
//
// Capture uses cudaStreamCaptureModeThreadLocal, so a call that cannot be captured (an allocation,
// a synchronising library call) fails the capture instead of running half-recorded. Then that key's
// work runs eagerly, now and from then on, and failure() says why; results are the same either
// way, because the graph holds exactly the calls the eager path makes.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace kwm::lm::cuda {

class StreamGraphs {
 public:
  using Key = std::vector<std::uintptr_t>;

  StreamGraphs() = default;
  StreamGraphs(const StreamGraphs&) = delete;
  StreamGraphs& operator=(const StreamGraphs&) = delete;
  ~StreamGraphs();

  // Queues `work` on `stream`: the graph captured for `key` (capturing it now if new), or `work`
  // itself when graphs are off. `work` must only queue device work on `stream` (no host waits, no
  // allocations, no host copies out of pageable memory).
  void run(const Key& key, cudaStream_t stream, const std::function<void()>& work);

  // On by default; off drops the captured graphs and runs every work eagerly.
  void set_enabled(bool on);
  bool enabled() const { return enabled_; }
  std::size_t captured() const { return graphs_.size(); }
  std::size_t refused() const { return refused_.size(); }
  // Why the first refused capture failed ("" while none has).
  const std::string& failure() const { return failure_; }

 private:
  void clear();

  std::map<Key, cudaGraphExec_t> graphs_;
  std::set<Key> refused_;  // keys whose capture failed: eager from then on
  bool enabled_ = true;
  std::string failure_;
};

}  // namespace kwm::lm::cuda
