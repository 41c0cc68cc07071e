// main() for the tests that run under mpirun: MPI communicator, output from rank 0 only, and the
// exit status is non-zero on every rank when any rank failed.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include "distributed/mpi_communicator.hpp"

namespace kwm::testing {

inline Communicator* comm = nullptr;

// Runs every test on every rank (each test's collectives must match across ranks); only rank 0
// prints, and a failure on any rank makes every rank's exit status non-zero.
inline int run_tests_on_all_ranks(int rank) {
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS();
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any_failed;
}

inline int run_mpi_tests(int argc, char** argv) {
  auto communicator = make_mpi_communicator(&argc, &argv);
  comm = communicator.get();
  ::testing::InitGoogleTest(&argc, argv);
  return run_tests_on_all_ranks(communicator->rank());
}

}  // namespace kwm::testing
