// The data-parallel information-form step under mpirun at 1-4 ranks, on a model linear in its
// parameters (y = H theta + v): each rank streams a contiguous shard of the observations; the
// result equals the one-rank computation (1e-12 relative: the all-reduce adds the shards' sums in
// another order than one rank's running sum) and, with one block, the closed-form batch posterior
// (Bayesian linear regression). Every rank ends with bitwise the same mean.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cstring>
#include <random>

#include "distributed/data_parallel_information.hpp"
#include "distributed/packed_symmetric.hpp"
#include "tests/distributed/mpi_test_main.hpp"

namespace kwm {
namespace {

using testing::comm;

constexpr double kTolerance = 1e-12;
constexpr int kObservations = 97;
constexpr Eigen::Index kOutputs = 2;
constexpr Eigen::Index kParameters = 10;

struct Data {
  std::vector<Eigen::MatrixXd> h;
  std::vector<Eigen::VectorXd> y;
  Eigen::MatrixXd r;
};

Data simulate() {
  std::mt19937 rng(5);
  std::normal_distribution<double> normal;
  Eigen::VectorXd truth(kParameters);
  for (Eigen::Index i = 0; i < kParameters; ++i) truth(i) = normal(rng);
  Data d;
  d.r = Eigen::MatrixXd::Identity(kOutputs, kOutputs) * 0.04;
  d.r(0, 1) = d.r(1, 0) = 0.01;
  for (int n = 0; n < kObservations; ++n) {
    Eigen::MatrixXd h(kOutputs, kParameters);
    for (Eigen::Index i = 0; i < h.size(); ++i) h.data()[i] = normal(rng);
    d.h.push_back(h);
    d.y.push_back(h * truth +
                  0.2 * Eigen::VectorXd::NullaryExpr(kOutputs, [&] { return normal(rng); }));
  }
  return d;
}

std::pair<int, int> my_shard(int begin, int end) {
  const int count = end - begin, p = comm->size(), r = comm->rank();
  return {begin + count * r / p, begin + count * (r + 1) / p};
}

// Plain Eigen, one process: block-diagonal information, each block from its own columns of H.
Eigen::VectorXd one_rank(const Data& d, const std::vector<Eigen::Index>& sizes,
                         const std::vector<std::pair<int, int>>& rounds) {
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(kParameters);
  std::vector<Eigen::MatrixXd> information;
  for (auto n : sizes) information.push_back(Eigen::MatrixXd::Identity(n, n) * 0.5);
  const Eigen::MatrixXd r_inv = d.r.inverse();
  for (const auto& [begin, end] : rounds) {
    Eigen::Index offset = 0;
    Eigen::VectorXd next = mean;
    for (std::size_t b = 0; b < sizes.size(); ++b) {
      const Eigen::Index n = sizes[b];
      Eigen::MatrixXd precision = Eigen::MatrixXd::Zero(n, n);
      Eigen::VectorXd vector = Eigen::VectorXd::Zero(n);
      for (int k = begin; k < end; ++k) {
        const Eigen::MatrixXd h_b = d.h[std::size_t(k)].middleCols(offset, n);
        const Eigen::VectorXd e = d.y[std::size_t(k)] - d.h[std::size_t(k)] * mean;
        precision += h_b.transpose() * r_inv * h_b;
        vector += h_b.transpose() * r_inv * e;
      }
      information[b] += precision;
      next.segment(offset, n) += information[b].llt().solve(vector);
      offset += n;
    }
    mean = next;
  }
  return mean;
}

Eigen::VectorXd data_parallel(const Data& d, const std::vector<Eigen::Index>& sizes,
                              const std::vector<std::pair<int, int>>& rounds) {
  std::vector<Eigen::MatrixXd> prior;
  for (auto n : sizes) prior.push_back(Eigen::MatrixXd::Identity(n, n) * 0.5);
  DataParallelInformation step(*comm, Eigen::VectorXd::Zero(kParameters), prior);
  for (const auto& [begin, end] : rounds) {
    const auto [from, to] = my_shard(begin, end);
    for (int k = from; k < to; ++k) {
      const auto n = std::size_t(k);
      EXPECT_TRUE(step.accumulate(d.h[n], d.y[n] - d.h[n] * step.mean(), d.r));
    }
    for (UpdateStatus s : step.step()) EXPECT_EQ(s, UpdateStatus::applied);
  }
  return step.mean();
}

void expect_same_on_every_rank(const Eigen::VectorXd& x) {
  const auto n = std::size_t(x.size());
  std::vector<double> all(n * std::size_t(comm->size()));
  comm->all_gather(x.data(), n, all.data());
  for (int r = 0; r < comm->size(); ++r)
    EXPECT_EQ(0, std::memcmp(all.data() + std::size_t(r) * n, x.data(), n * sizeof(double)))
        << "rank " << r;
}

double relative(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff();
}

TEST(DataParallelInformation, ShardsEqualOneRankForEveryBlocking) {
  const Data d = simulate();
  const std::vector<std::pair<int, int>> rounds = {{0, 40}, {40, kObservations}};
  for (const std::vector<Eigen::Index>& sizes :
       {std::vector<Eigen::Index>{3, 2, 4, 1}, std::vector<Eigen::Index>{10},
        std::vector<Eigen::Index>(10, 1)}) {
    const Eigen::VectorXd got = data_parallel(d, sizes, rounds);
    const Eigen::VectorXd want = one_rank(d, sizes, rounds);
    EXPECT_LE(relative(got, want), kTolerance) << sizes.size() << " blocks";
    expect_same_on_every_rank(got);
  }
}

TEST(DataParallelInformation, OneBlockIsTheBatchPosterior) {
  const Data d = simulate();
  const Eigen::VectorXd got = data_parallel(d, {kParameters}, {{0, kObservations}});
  // (L0 + sum H^T R^-1 H)^-1 (L0 m0 + sum H^T R^-1 y) with m0 = 0, L0 = I / 2.
  const Eigen::MatrixXd r_inv = d.r.inverse();
  Eigen::MatrixXd l = Eigen::MatrixXd::Identity(kParameters, kParameters) * 0.5;
  Eigen::VectorXd g = Eigen::VectorXd::Zero(kParameters);
  for (int k = 0; k < kObservations; ++k) {
    l += d.h[std::size_t(k)].transpose() * r_inv * d.h[std::size_t(k)];
    g += d.h[std::size_t(k)].transpose() * r_inv * d.y[std::size_t(k)];
  }
  EXPECT_LE(relative(got, l.llt().solve(g)), 1e-11);
}

TEST(DataParallelInformation, NonFiniteStatisticsOnOneRankSkipEverywhere) {
  const Data d = simulate();
  DataParallelInformation step(*comm, Eigen::VectorXd::Zero(kParameters),
                               {Eigen::MatrixXd::Identity(kParameters, kParameters)});
  // accumulate() refuses NaN input, so poison this rank's statistics the way a corrupted
  // H^T R^-1 H would arrive: through an observation with a huge-but-finite H whose square
  // overflows.
  if (comm->rank() == comm->size() - 1)
    EXPECT_TRUE(step.accumulate(d.h[0] * 1e200, d.y[0], d.r));
  else
    EXPECT_TRUE(step.accumulate(d.h[1], d.y[1], d.r));
  const auto statuses = step.step();
  EXPECT_EQ(statuses[0], UpdateStatus::skipped_nonfinite);
  EXPECT_EQ(step.mean(), Eigen::VectorXd::Zero(kParameters));
  // The next step is clean again on every rank.
  EXPECT_TRUE(step.accumulate(d.h[2], d.y[2], d.r));
  EXPECT_EQ(step.step()[0], UpdateStatus::applied);
  expect_same_on_every_rank(step.mean());
}

TEST(PackedSymmetric, RoundTripsAndCountsHalf) {
  Eigen::MatrixXd a(3, 3);
  a << 1, 2, 3, 2, 4, 5, 3, 5, 6;
  std::vector<double> packed(packed_size(3));
  EXPECT_EQ(pack_upper(a, packed.data()), 6u);
  EXPECT_EQ(packed, (std::vector<double>{1, 2, 4, 3, 5, 6}));
  Eigen::MatrixXd b(3, 3);
  unpack_symmetric(packed.data(), b);
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace kwm

int main(int argc, char** argv) { return kwm::testing::run_mpi_tests(argc, argv); }
