// Strong and weak scaling of the sharded DEKF update over MPI ranks (CPU, fp64): B dense blocks
// of n parameters placed by LPT, m outputs; every rank forms U_b = P_b H_b^T and its partial
// H P H^T for the blocks it owns, one all-reduce of the m x m sum, owners update, means gathered.
//   mpirun -np R dekf_scaling --blocks 64 --n 256 --m 8 --updates 20 [--weak]
// --weak: --blocks per rank (B = blocks x R), else B = blocks in total. One JSON line (rank 0).
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/backend/host_transfer.hpp"
#include "core/kalman/decoupled_ekf.hpp"
#include "distributed/mpi_communicator.hpp"
#include "distributed/placement.hpp"

int main(int argc, char** argv) {
  auto comm = kwm::make_mpi_communicator(&argc, &argv);
  int blocks = 64, n = 256, m = 8, updates = 20;
  bool weak = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--blocks")
      blocks = next();
    else if (a == "--n")
      n = next();
    else if (a == "--m")
      m = next();
    else if (a == "--updates")
      updates = next();
    else if (a == "--weak")
      weak = true;
  }
  const int total_blocks = weak ? blocks * comm->size() : blocks;
  std::vector<kwm::BlockCost> costs;
  for (int b = 0; b < total_blocks; ++b) costs.push_back({b, double(n) * n});
  const kwm::Placement placement = kwm::place_blocks(costs, comm->size());

  auto backend = kwm::make_backend<double>("cpu");
  std::vector<kwm::ParameterBlock<double>> mine;
  std::vector<kwm::Tensor<double>> jacobians;
  std::mt19937 rng(1);
  std::normal_distribution<double> normal;
  for (int b = 0; b < total_blocks; ++b) {
    Eigen::MatrixXd h(m, n);
    for (Eigen::Index i = 0; i < h.size(); ++i) h.data()[i] = normal(rng) / std::sqrt(double(n));
    if (placement.owner[std::size_t(b)] != comm->rank()) continue;
    mine.push_back(
        kwm::make_dense_block(*backend, b, kwm::to_backend(*backend, Eigen::VectorXd::Zero(n)),
                              kwm::to_backend(*backend, Eigen::MatrixXd::Identity(n, n).eval())));
    jacobians.push_back(kwm::to_backend(*backend, h));
  }
  kwm::UpdateConfig config;
  std::size_t reduced_bytes = 0;
  kwm::DecoupledEkf<double> ekf(*backend, config, [&](double* data, kwm::Index count) {
    reduced_bytes += std::size_t(count) * sizeof(double);
    comm->all_reduce_sum(data, std::size_t(count));
  });
  std::vector<kwm::BlockObservation<double>> observations;
  for (std::size_t i = 0; i < mine.size(); ++i) observations.push_back({&mine[i], jacobians[i]});
  const kwm::Tensor<double> e = kwm::to_backend(*backend, Eigen::VectorXd::Constant(m, 0.1));
  const kwm::Tensor<double> r = kwm::to_backend(*backend, Eigen::MatrixXd::Identity(m, m).eval());

  std::vector<std::size_t> counts(std::size_t(comm->size()), 0);
  for (int b = 0; b < total_blocks; ++b) counts[std::size_t(placement.owner[std::size_t(b)])] += n;
  std::vector<double> send(counts[std::size_t(comm->rank())]), all(std::size_t(total_blocks) * n);
  std::size_t gathered_bytes = 0;
  auto step = [&] {
    ekf.update(observations, e, r);
    std::size_t at = 0;
    for (auto& block : mine) {
      backend->download(block.mean, send.data() + at);
      at += std::size_t(n);
    }
    comm->all_gatherv(send.data(), counts, all.data());
    gathered_bytes += all.size() * sizeof(double);
  };
  step();  // warm-up
  reduced_bytes = gathered_bytes = 0;
  comm->barrier();
  const auto start = std::chrono::steady_clock::now();
  for (int k = 0; k < updates; ++k) step();
  comm->barrier();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / updates;
  double covariance_bytes = 0;
  for (auto& block : mine) covariance_bytes += double(block.covariance.size()) * sizeof(double);
  double max_bytes = covariance_bytes;
  MPI_Allreduce(MPI_IN_PLACE, &max_bytes, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  if (comm->rank() == 0)
    std::printf(
        "{\"ranks\": %d, \"mode\": \"%s\", \"blocks\": %d, \"n\": %d, \"m\": %d, "
        "\"seconds_per_update\": %.6g, \"allreduce_bytes_per_update\": %zu, "
        "\"gather_bytes_per_update\": %zu, \"imbalance\": %.4f, "
        "\"max_covariance_bytes_per_rank\": %.6g}\n",
        comm->size(), weak ? "weak" : "strong", total_blocks, n, m, seconds,
        reduced_bytes / std::size_t(updates), gathered_bytes / std::size_t(updates),
        placement.imbalance(), max_bytes);
  return 0;
}
