// The NCCL Communicator: collectives on GPU buffers (device pointers), bootstrapped over a host
// Communicator (MPI): rank 0's ncclUniqueId is broadcast, then a barrier, then ncclCommInitRank.
// Every NCCL call is checked; an error, or a collective that does not finish within the timeout
// (a dead or stuck peer), aborts the job with a message naming the rank instead of hanging.
// Host-side operations (all_reduce_any, broadcast_bytes, barrier, abort) go through the bootstrap.
#pragma once

#include <memory>

#include "distributed/communicator.hpp"

namespace kwm {

// The GPU this process should use: its node-local rank (OMPI_COMM_WORLD_LOCAL_RANK,
// SLURM_LOCALID, MPI_LOCALRANKID; else the world rank) modulo the visible devices. -1 without one.
int local_gpu(const Communicator& bootstrap);

// Selects local_gpu() as the current device and builds the NCCL communicator over every rank of
// `bootstrap`, which must outlive it. Buffers passed to its collectives are device pointers on
// that GPU. Throws std::runtime_error (on every rank) when some rank sees no GPU.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap,
                                                     double timeout_seconds = 300.0);

}  // namespace kwm
