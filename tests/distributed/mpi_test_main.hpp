// main() for the tests that run under mpirun: MPI communicator, output from rank 0 only, and the
// exit status is non-zero on every rank when any rank failed.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include "distributed/mpi_communicator.hpp"

namespace kwm::testing {

inline Communicator* comm = nullptr;

inline int run_mpi_tests(int argc, char** argv) {
  auto communicator = make_mpi_communicator(&argc, &argv);
  comm = communicator.get();
  ::testing::InitGoogleTest(&argc, argv);
  if (communicator->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS();
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any_failed;
}

}  // namespace kwm::testing
