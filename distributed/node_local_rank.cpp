#include "distributed/node_local_rank.hpp"

#include <cstdlib>

namespace kwm {

int node_local_rank(const Communicator& world) {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') {
      const int local = std::atoi(value);
      if (local >= 0) return local;
    }
  }
  return world.rank();
}

}  // namespace kwm
