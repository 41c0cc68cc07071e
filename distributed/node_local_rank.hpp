// A rank's index among the ranks of its node, from the launcher's environment
// (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, MPI_LOCALRANKID; else the world rank): how a rank
// picks its GPU (local rank modulo the visible devices) without asking the other ranks.
#pragma once

#include "distributed/communicator.hpp"

namespace kwm {

int node_local_rank(const Communicator& world);

}  // namespace kwm
