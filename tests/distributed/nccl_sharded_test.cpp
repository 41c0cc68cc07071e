// NCCL on GPUs under mpirun (one GPU per rank; skips without enough GPUs): the all-reduce and the
// all-gatherv on device buffers give the closed forms, and the sharded DEKF learner on the CUDA
// backend, its m x m sums through NCCL, gives the single-GPU learner's theta. Tolerances: fp32
// sums of 4096 values of O(1): 1e-6 relative; the fp64 CUDA learner: 1e-11 relative (only the
// order of the cross-rank sum differs).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "core/learners/kalman/kalman_sequence_learner.hpp"
#include "core/models/model_io.hpp"
#include "distributed/nccl_communicator.hpp"
#include "distributed/replicated_batch.hpp"
#include "tests/distributed/mpi_test_main.hpp"

namespace kwm {
namespace {

using testing::comm;
Communicator* nccl = nullptr;  // null when this job cannot have one GPU per rank

#define SKIP_WITHOUT_GPUS() \
  if (nccl == nullptr)      \
  GTEST_SKIP() << "needs one CUDA device per rank (" << comm->size() << " ranks)"

template <typename T>
T* device_copy(const std::vector<T>& host) {
  T* device = nullptr;
  EXPECT_EQ(cudaMalloc(&device, host.size() * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
            cudaSuccess);
  return device;
}
template <typename T>
std::vector<T> host_copy(const T* device, std::size_t n) {
  std::vector<T> host(n);
  EXPECT_EQ(cudaMemcpy(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return host;
}

TEST(Nccl, AllReduceSumMatchesTheClosedForm) {
  SKIP_WITHOUT_GPUS();
  const int p = comm->size(), r = comm->rank();
  constexpr std::size_t n = 4096;
  std::vector<float> f(n);
  std::vector<double> d(n);
  for (std::size_t i = 0; i < n; ++i) {
    f[i] = float(std::sin(0.01 * double(i) + r));
    d[i] = std::cos(0.01 * double(i) + r);
  }
  float* fd = device_copy(f);
  double* dd = device_copy(d);
  nccl->all_reduce_sum(fd, n);
  nccl->all_reduce_sum(dd, n);
  const auto fs = host_copy(fd, n);
  const auto ds = host_copy(dd, n);
  for (std::size_t i = 0; i < n; ++i) {
    double fwant = 0, dwant = 0;
    for (int k = 0; k < p; ++k) {
      fwant += std::sin(0.01 * double(i) + k);
      dwant += std::cos(0.01 * double(i) + k);
    }
    ASSERT_NEAR(fs[i], fwant, 1e-6 * p) << i;
    ASSERT_NEAR(ds[i], dwant, 1e-14 * p) << i;
  }
  cudaFree(fd);
  cudaFree(dd);
}

TEST(Nccl, AllGathervOnDeviceBuffers) {
  SKIP_WITHOUT_GPUS();
  const int p = comm->size();
  std::vector<std::size_t> counts(static_cast<std::size_t>(p));
  for (int r = 0; r < p; ++r) counts[std::size_t(r)] = std::size_t(r + 2);
  std::vector<double> mine(counts[std::size_t(comm->rank())], double(comm->rank()));
  double* send = device_copy(mine);
  const std::size_t total = std::accumulate(counts.begin(), counts.end(), std::size_t{0});
  double* recv = device_copy(std::vector<double>(total, -1.0));
  nccl->all_gatherv(send, counts, recv);
  const auto all = host_copy(recv, total);
  std::size_t at = 0;
  for (int r = 0; r < p; ++r)
    for (std::size_t i = 0; i < counts[std::size_t(r)]; ++i) EXPECT_EQ(all[at++], double(r));
  cudaFree(send);
  cudaFree(recv);
}

TEST(Nccl, ShardedCudaLearnerEqualsTheSingleGpuLearner) {
  SKIP_WITHOUT_GPUS();
  const char* model =
      "{type: diagonal_stack, n_in: 0, n_out: 2, output_lags: 1, width: 8, states: 8, layers: 2, "
      "seed: 3}";
  KalmanLearnerConfig config;
  config.kind = KalmanLearnerKind::sensitivity_dekf;
  config.blocking = Blocking::per_unit;
  config.backend = "cuda";
  config.kalman.noise.mode = NoiseMode::adaptive;
  auto run = [&](bool sharded) {
    LearnerSharding sharding;
    if (sharded) sharding = replicated_batch_sharding(*comm, nccl);
    KalmanSequenceLearner learner(make_model(YAML::Load(model)), config, sharding);
    std::mt19937 rng(2);
    std::normal_distribution<double> normal;
    Eigen::Vector2d x(0, 0);
    for (int t = 0; t < 40; ++t) {
      learner.predict(Eigen::VectorXd());
      x = Eigen::Vector2d(0.9 * x(0) + normal(rng), 0.5 * x(0) - 0.3 * x(1) + normal(rng));
      learner.observe(x, true);
    }
    return learner.model().theta();
  };
  const Eigen::VectorXd single = run(false), sharded = run(true);
  const double relative = (single - sharded).cwiseAbs().maxCoeff() / single.cwiseAbs().maxCoeff();
  if (comm->rank() == 0)
    std::printf("sharded vs single GPU: max relative difference %.3g\n", relative);
  EXPECT_LE(relative, 1e-11);
  const auto n = std::size_t(sharded.size());
  std::vector<double> all(n * std::size_t(comm->size()));
  comm->all_gather(sharded.data(), n, all.data());
  for (int r = 0; r < comm->size(); ++r)
    EXPECT_EQ(0, std::memcmp(all.data() + std::size_t(r) * n, sharded.data(), n * sizeof(double)));
}

}  // namespace
}  // namespace kwm

int main(int argc, char** argv) {
  auto world = kwm::make_mpi_communicator(&argc, &argv);
  kwm::testing::comm = world.get();
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
  std::unique_ptr<kwm::Communicator> nccl;
  // Every rank sees the same node layout here (one host): one GPU per rank or no NCCL at all.
  if (devices >= world->size()) nccl = kwm::make_nccl_communicator(*world, 120.0);
  kwm::nccl = nccl.get();
  ::testing::InitGoogleTest(&argc, argv);
  return kwm::testing::run_tests_on_all_ranks(world->rank());
}
