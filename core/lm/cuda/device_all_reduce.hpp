// Sums over ranks of device buffers, for the multi-rank GPU learners (one rank per GPU). A
// DeviceAllReduce sums `count` floats at a device pointer in place over every rank, ordered after
// the work already queued on the learner's stream, and returns once the result is there. Two
// implementations: NCCL (built by launch/, which owns the communicator; ranks on distinct GPUs)
// and the host-staged one below (any rank layout, including several ranks sharing one GPU,
// which NCCL refuses).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <functional>

#include "core/lm/learners/language_learner.hpp"

namespace kwm::lm::cuda {

using DeviceAllReduce = std::function<void(float* device, std::size_t count)>;
// Builds the device all-reduce of a multi-rank run on a learner's stream (launch/ makes it from an
// NCCL communicator); empty: the learner's host-staged sums.
using DeviceAllReduceMaker = std::function<DeviceAllReduce(cudaStream_t)>;

// Copies the buffer to the host, sums it over ranks with the host collectives (in double), and
// copies the result back: correct on any layout but bounded by PCIe and MPI bandwidth. Needs
// host.all_reduce_sum when host.ranks > 1 (std::invalid_argument otherwise).
DeviceAllReduce host_staged_all_reduce(const LmCollectives& host, cudaStream_t stream);

// The GPU a rank of a multi-rank run uses: its node-local rank modulo the visible devices (the
// rule of distributed/nccl_communicator's local_gpu). Selects it (cudaSetDevice) before anything
// is allocated; returns it. std::runtime_error when no device is visible.
int select_device(int node_local_rank);

}  // namespace kwm::lm::cuda
