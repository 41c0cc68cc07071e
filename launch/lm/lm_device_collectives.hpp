// How the ranks of a multi-rank GPU run (learner.device: cuda under mpirun) sum their device
// buffers. Each rank first takes the GPU its node-local rank picks (modulo the visible devices).
// Then, decided on the all-gathered device identities so that every rank makes the same choice:
//   nccl  when kwm was built with NCCL and no two ranks share a GPU (NCCL refuses that);
//   host  otherwise: device -> host copy, MPI all-reduce, copy back (slower, any layout).
// KWM_DEVICE_COLLECTIVES=nccl|host forces one (it must be the same on every rank).
#pragma once

#include <string>

#include "core/lm/cuda/kwm_linearized_cuda_learner.hpp"
#include "distributed/communicator.hpp"

namespace kwm::launch {

struct DeviceCollectives {
  std::string kind;                     // "nccl" or "host"
  int device = 0;                       // the CUDA device this rank selected
  lm::cuda::DeviceAllReduceMaker make;  // empty for "host" (the learner's host-staged sums)
};

// Collective over `world` (size > 1); throws UserError for a bad KWM_DEVICE_COLLECTIVES or nccl
// without an NCCL build. `world` must outlive the returned maker's all-reduces.
DeviceCollectives choose_device_collectives(Communicator& world);

}  // namespace kwm::launch
