// Choosing the world communicator from the launch environment.
#include "distributed/world.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>

#ifdef KWM_HAVE_MPI
#include "distributed/mpi_communicator.hpp"
#endif

namespace kwm {
#ifndef KWM_HAVE_MPI
namespace {

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return std::atoi(value);
}

}  // namespace
#endif

bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

std::unique_ptr<Communicator> make_world_communicator([[maybe_unused]] int* argc,
                                                      [[maybe_unused]] char*** argv) {
  if (!launched_by_mpi()) return make_single_process_communicator();
#ifdef KWM_HAVE_MPI
  return make_mpi_communicator(argc, argv);
#else
  const int ranks = std::max(env_int("OMPI_COMM_WORLD_SIZE", 1), env_int("PMI_SIZE", 1));
  if (ranks > 1)
    throw std::runtime_error("started by an MPI launcher with " + std::to_string(ranks) +
                             " ranks, but this kwm was built without MPI (install Open MPI and "
                             "reconfigure)");
  return make_single_process_communicator();
#endif
}

}  // namespace kwm
