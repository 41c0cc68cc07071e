// The NCCL Communicator: collectives on GPU buffers (device pointers), bootstrapped over a host
// Communicator (MPI): rank 0's ncclUniqueId is broadcast, then a barrier, then ncclCommInitRank.
// Every NCCL call is checked; an error, or a call that does not finish within the timeout (a dead
// or stuck peer), ends the job with a message naming the rank and the call instead of hanging.
// Host-side operations (all_reduce_any, broadcast_bytes, barrier, abort) go through the bootstrap.
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "distributed/communicator.hpp"

namespace kwm {

// The GPU this process should use: its node-local rank (OMPI_COMM_WORLD_LOCAL_RANK,
// SLURM_LOCALID, MPI_LOCALRANKID; else the world rank) modulo the visible devices. -1 without one.
int local_gpu(const Communicator& bootstrap);

// Selects local_gpu() as the current device and builds the NCCL communicator over every rank of
// `bootstrap`, which must outlive it. Buffers passed to its collectives are device pointers on
// that GPU. Throws std::runtime_error (on every rank) when some rank sees no GPU.
//
// `stream`: where the collectives are queued. Give the stream whose kernels write and read the
// buffers (the CUDA backend's): each collective is then ordered after them on that stream, with
// no device-wide synchronise, and the call returns once that stream has finished it. Null: the
// communicator's own stream, after a device-wide synchronise (for buffers written on streams it
// cannot see). Either way the buffers hold the result when the call returns.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap,
                                                     double timeout_seconds = 300.0,
                                                     cudaStream_t stream = nullptr);

}  // namespace kwm
