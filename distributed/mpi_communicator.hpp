// The MPI Communicator (CPU buffers). Initialises MPI on first use if the program has not, and
// finalises it on destruction only in that case.
#pragma once

#include <memory>

#include "distributed/communicator.hpp"

namespace kwm {

// Sums of up to this many values are computed in a fixed order (gather, then add in rank order),
// so a run on N ranks is bitwise reproducible and independent of Open MPI's algorithm choice;
// larger sums use MPI_Allreduce.
inline constexpr std::size_t kOrderedReductionLimit = 1 << 16;

std::unique_ptr<Communicator> make_mpi_communicator(int* argc, char*** argv);

}  // namespace kwm
