#include "launch/lm/lm_device_collectives.hpp"

#include <cuda_runtime.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <vector>

#include "core/lm/cuda/device_all_reduce.hpp"
#include "distributed/node_local_rank.hpp"
#include "launch/user_error.hpp"
#ifdef KWM_HAVE_NCCL
#include "distributed/nccl_communicator.hpp"
#endif

namespace kwm::launch {
namespace {

// Host name and PCI bus id of this rank's GPU, hashed into the 52 bits a double holds exactly.
double device_identity(int device) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  char bus[64] = {};
  if (cudaDeviceGetPCIBusId(bus, sizeof bus, device) != cudaSuccess)
    throw UserError("learner.device: cuda: cannot read the PCI bus id of device " +
                    std::to_string(device));
  const std::size_t hash = std::hash<std::string>{}(std::string(host) + "/" + bus);
  return static_cast<double>(hash & ((std::uint64_t{1} << 52) - 1));
}

std::string requested_kind() {
  const char* value = std::getenv("KWM_DEVICE_COLLECTIVES");
  const std::string kind = value != nullptr && *value != '\0' ? value : "auto";
  if (kind != "auto" && kind != "nccl" && kind != "host")
    throw UserError("KWM_DEVICE_COLLECTIVES must be auto, nccl or host; got '" + kind + "'");
  return kind;
}

}  // namespace

DeviceCollectives choose_device_collectives(Communicator& world) {
  DeviceCollectives out;
  const std::string requested = requested_kind();
  out.device = lm::cuda::select_device(node_local_rank(world));
  std::vector<double> identities(static_cast<std::size_t>(world.size()));
  const double mine = device_identity(out.device);
  world.all_gather(&mine, 1, identities.data());
  std::sort(identities.begin(), identities.end());
  const bool shared = std::adjacent_find(identities.begin(), identities.end()) != identities.end();
#ifdef KWM_HAVE_NCCL
  constexpr bool have_nccl = true;
#else
  constexpr bool have_nccl = false;
#endif
  if (requested == "nccl" && !have_nccl)
    throw UserError("KWM_DEVICE_COLLECTIVES=nccl: this kwm was built without NCCL");
  if (requested == "nccl" && shared)
    throw UserError(
        "KWM_DEVICE_COLLECTIVES=nccl: several ranks share one GPU, which NCCL refuses"
        " (use one rank per GPU, or host)");
  out.kind = requested == "auto" ? (have_nccl && !shared ? "nccl" : "host") : requested;
#ifdef KWM_HAVE_NCCL
  if (out.kind == "nccl") {
    out.make = [&world](cudaStream_t stream) -> lm::cuda::DeviceAllReduce {
      std::shared_ptr<Communicator> nccl = make_nccl_communicator(world, 300.0, stream);
      return [nccl](float* data, std::size_t count) { nccl->all_reduce_sum(data, count); };
    };
  }
#endif
  return out;
}

}  // namespace kwm::launch
