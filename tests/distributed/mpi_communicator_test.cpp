// The MPI communicator under mpirun at 1-4 ranks: sums, flags, gathers and broadcasts give the
// closed-form answers, and every rank holds bitwise identical sums.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "distributed/mpi_communicator.hpp"
#include "tests/distributed/mpi_test_main.hpp"

namespace kwm {
namespace {

using kwm::testing::comm;

TEST(MpiCommunicator, SumOfRankValuesIsClosedForm) {
  const int p = comm->size();
  std::vector<double> x = {double(comm->rank()), 1.0, 0.1 * (comm->rank() + 1)};
  comm->all_reduce_sum(x.data(), x.size());
  EXPECT_EQ(x[0], p * (p - 1) / 2.0);
  EXPECT_EQ(x[1], double(p));
  EXPECT_NEAR(x[2], 0.1 * p * (p + 1) / 2.0, 1e-15 * p);
  std::vector<float> f = {1.5f};
  comm->all_reduce_sum(f.data(), f.size());
  EXPECT_EQ(f[0], 1.5f * float(p));
}

TEST(MpiCommunicator, OrderedSumsAreBitwiseIdenticalOnEveryRank) {
  // Values whose sum depends on the order of addition in floating point.
  std::vector<double> x(64);
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = std::pow(10.0, double((comm->rank() * 7 + int(i)) % 17 - 8)) * (i % 2 ? -1.0 : 1.0);
  comm->all_reduce_sum(x.data(), x.size());
  std::vector<double> all(x.size() * std::size_t(comm->size()));
  comm->all_gather(x.data(), x.size(), all.data());
  for (int r = 0; r < comm->size(); ++r)
    EXPECT_EQ(
        0, std::memcmp(all.data() + std::size_t(r) * x.size(), x.data(), x.size() * sizeof(double)))
        << "rank " << r << " holds a different sum";
}

TEST(MpiCommunicator, LargeSumsUseAllreduce) {
  std::vector<double> x(kOrderedReductionLimit + 1, 1.0);
  comm->all_reduce_sum(x.data(), x.size());
  EXPECT_EQ(x.front(), double(comm->size()));
  EXPECT_EQ(x.back(), double(comm->size()));
}

TEST(MpiCommunicator, AnyFlagSeenByOneRankReachesAll) {
  EXPECT_FALSE(comm->all_reduce_any(false));
  EXPECT_TRUE(comm->all_reduce_any(comm->rank() == comm->size() - 1));
}

TEST(MpiCommunicator, GatherAndBroadcast) {
  double mine = 10.0 + comm->rank();
  std::vector<double> all(std::size_t(comm->size()));
  comm->all_gather(&mine, 1, all.data());
  for (int r = 0; r < comm->size(); ++r) EXPECT_EQ(all[std::size_t(r)], 10.0 + r);
  double value = comm->rank() == 0 ? 42.0 : -1.0;
  comm->broadcast(&value, 1, 0);
  EXPECT_EQ(value, 42.0);
  comm->barrier();
}

TEST(MpiCommunicator, GatherWithACountPerRank) {
  // Rank r sends r + 1 values r*10, r*10+1, ...; rank 0 of a 3-rank job also tests count 0 below.
  const int p = comm->size();
  std::vector<std::size_t> counts(static_cast<std::size_t>(p));
  for (int r = 0; r < p; ++r) counts[std::size_t(r)] = std::size_t(r + 1);
  std::vector<double> mine(std::size_t(comm->rank() + 1));
  for (std::size_t i = 0; i < mine.size(); ++i) mine[i] = comm->rank() * 10.0 + double(i);
  std::vector<double> all(std::size_t(p * (p + 1) / 2));
  comm->all_gatherv(mine.data(), counts, all.data());
  std::size_t at = 0;
  for (int r = 0; r < p; ++r)
    for (int i = 0; i <= r; ++i) EXPECT_EQ(all[at++], r * 10.0 + i);
  // A rank with nothing to send.
  counts.assign(std::size_t(p), 1);
  counts[0] = 0;
  double one = comm->rank();
  std::vector<double> rest(std::size_t(p - 1) + 1, -1.0);
  comm->all_gatherv(&one, counts, rest.data());
  for (int r = 1; r < p; ++r) EXPECT_EQ(rest[std::size_t(r - 1)], double(r));
}

TEST(MpiCommunicator, BroadcastBytes) {
  char id[128];
  for (int i = 0; i < 128; ++i) id[i] = char(comm->rank() == 0 ? i : 0);
  comm->broadcast_bytes(id, sizeof id, 0);
  for (int i = 0; i < 128; ++i) EXPECT_EQ(id[i], char(i));
}

}  // namespace
}  // namespace kwm

int main(int argc, char** argv) { return kwm::testing::run_mpi_tests(argc, argv); }
