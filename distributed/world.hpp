// The communicator a program should use: MPI when it was started by a launcher (mpirun, srun,
// any PMI/PMIx launcher) and the build has MPI, the single-process communicator otherwise.
#pragma once

#include <memory>

#include "distributed/communicator.hpp"

namespace kwm {

// True when the environment names more than one rank or a PMI/PMIx launcher (OMPI_COMM_WORLD_SIZE,
// PMIX_RANK, PMI_SIZE, PMI_RANK).
bool launched_by_mpi();

// MPI communicator when launched_by_mpi() and the build has MPI; single process otherwise. Throws
// std::runtime_error when a launcher asks for several ranks but the build has no MPI (every rank
// would silently train alone).
std::unique_ptr<Communicator> make_world_communicator(int* argc, char*** argv);

}  // namespace kwm
