// Device arrays of pointers for batched launches: cuBLAS's batched calls and the backend's batched
// kernels read their operands' addresses from device memory. A ring of slots, each with a pinned
// host half and a device half: stage() writes the addresses into the next slot's pinned half and
// queues an asynchronous copy to its device half on the backend's stream, so no call waits for
// the device. A slot's pinned half is rewritten only after the event recorded behind its last copy
// has fired (long since, with 64 slots and a few batched calls per update); its device half only
// by a copy queued on the same stream behind every launch that read it.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend/cuda/cuda_check.hpp"

namespace kwm {

class PointerStage {
 public:
  static constexpr std::size_t kSlots = 64;
  static constexpr std::size_t kSlotWords = 4096;  // 32 KiB of addresses per staged call

  explicit PointerStage(cudaStream_t stream) : stream_(stream) {
    const std::size_t bytes = kSlots * kSlotWords * sizeof(void*);
    KWM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host_), bytes));
    KWM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&device_), bytes));
    for (cudaEvent_t& event : copied_) {
      KWM_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    }
  }
  ~PointerStage() {
    // No throw from a destructor; the owner has drained the stream.
    for (cudaEvent_t event : copied_) {
      if (event) cudaEventDestroy(event);
    }
    if (device_) cudaFree(device_);
    if (host_) cudaFreeHost(host_);
  }
  PointerStage(const PointerStage&) = delete;
  PointerStage& operator=(const PointerStage&) = delete;

  // The device address of a copy of `words`, valid for launches queued on the stream after this
  // call and before kSlots further calls.
  void** stage(const std::vector<const void*>& words) {
    if (words.size() > kSlotWords) {
      throw std::invalid_argument("cuda pointer stage: " + std::to_string(words.size()) +
                                  " addresses in one call; at most " + std::to_string(kSlotWords));
    }
    const std::size_t slot = next_;
    next_ = (next_ + 1) % kSlots;
    if (used_[slot]) KWM_CUDA_CHECK(cudaEventSynchronize(copied_[slot]));
    void** host = host_ + slot * kSlotWords;
    void** device = device_ + slot * kSlotWords;
    if (words.empty()) return device;
    std::memcpy(static_cast<void*>(host), static_cast<const void*>(words.data()),
                words.size() * sizeof(void*));
    KWM_CUDA_CHECK(cudaMemcpyAsync(device, host, words.size() * sizeof(void*),
                                   cudaMemcpyHostToDevice, stream_));
    KWM_CUDA_CHECK(cudaEventRecord(copied_[slot], stream_));
    used_[slot] = true;
    return device;
  }

 private:
  cudaStream_t stream_;
  void** host_ = nullptr;
  void** device_ = nullptr;
  std::array<cudaEvent_t, kSlots> copied_{};
  std::array<bool, kSlots> used_{};
  std::size_t next_ = 0;
};

}  // namespace kwm
