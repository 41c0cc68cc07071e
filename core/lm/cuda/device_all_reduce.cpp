// The host-staged device all-reduce and the per-rank device choice.
#include "core/lm/cuda/device_all_reduce.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend/cuda/cuda_check.hpp"

namespace kwm::lm::cuda {

DeviceAllReduce host_staged_all_reduce(const LmCollectives& host, cudaStream_t stream) {
  if (host.ranks > 1 && !host.all_reduce_sum)
    throw std::invalid_argument("host-staged device all-reduce: " + std::to_string(host.ranks) +
                                " ranks need the host all_reduce_sum collective");
  // The staging vectors live as long as the function (one allocation, reused every step).
  struct Staging {
    std::vector<float> single;
    std::vector<double> sum;
  };
  auto staging = std::make_shared<Staging>();
  return [staging, sum = host.all_reduce_sum, ranks = host.ranks, stream](float* device,
                                                                          std::size_t count) {
    if (ranks == 1 || count == 0) return;
    staging->single.resize(count);
    staging->sum.resize(count);
    KWM_CUDA_CHECK(cudaMemcpyAsync(staging->single.data(), device, count * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream));
    KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (std::size_t i = 0; i < count; ++i)
      staging->sum[i] = static_cast<double>(staging->single[i]);
    sum(staging->sum.data(), count);
    for (std::size_t i = 0; i < count; ++i)
      staging->single[i] = static_cast<float>(staging->sum[i]);
    KWM_CUDA_CHECK(cudaMemcpyAsync(device, staging->single.data(), count * sizeof(float),
                                   cudaMemcpyHostToDevice, stream));
    KWM_CUDA_CHECK(cudaStreamSynchronize(stream));  // the host vector is reused next call
  };
}

int select_device(int node_local_rank) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
    throw std::runtime_error("learner.device: cuda: no CUDA device is visible to this process");
  const int device = (node_local_rank < 0 ? 0 : node_local_rank) % devices;
  KWM_CUDA_CHECK(cudaSetDevice(device));
  return device;
}

}  // namespace kwm::lm::cuda
