// NCCL on GPUs under mpirun (one GPU per rank; skips without enough GPUs): the all-reduce and the
// all-gatherv on device buffers give the closed forms, and the sharded DEKF learner on the CUDA
// backend, its m x m sums through NCCL, gives the single-GPU learner's theta. Tolerances: fp32
// sums of 4096 values of O(1): 1e-6 relative; the fp64 CUDA learner: 1e-11 relative (only the
// order of the cross-rank sum differs); the fp32 DEKF update on the backend's stream: 1e-5
// relative (about 80 fp32 ulps: only the grouping of the m x m sum differs, S is well conditioned).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "core/backend/cuda/cuda_backend.hpp"
#include "core/backend/host_transfer.hpp"
#include "core/kalman/decoupled_ekf.hpp"
#include "core/learners/kalman/kalman_sequence_learner.hpp"
#include "core/models/model_io.hpp"
#include "distributed/nccl_communicator.hpp"
#include "distributed/placement.hpp"
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

// The collectives queued on the CUDA backend's stream (no synchronise between the update's kernels
// and the all-reduce): the sharded fp32 DEKF update equals the one-GPU update of all blocks.
TEST(Nccl, StreamOrderedFp32DekfEqualsTheSingleGpuUpdate) {
  SKIP_WITHOUT_GPUS();
  auto backend = make_backend<float>("cuda");
  auto& cuda = dynamic_cast<CudaBackend<float>&>(*backend);
  auto ordered = make_nccl_communicator(*comm, 120.0, cuda.stream());
  constexpr int total = 12, n = 48, m = 4, updates = 6;
  std::vector<BlockCost> costs;
  for (int b = 0; b < total; ++b) costs.push_back({b, double(n) * n});
  const std::vector<int> owner = place_blocks(costs, comm->size()).owner;
  std::vector<ParameterBlock<float>> all, mine;
  for (int b = 0; b < total; ++b) {
    Tensor<float> p = backend->allocate(n, n);
    backend->add_identity(1.0f, p);
    const Tensor<float> mean = to_backend(*backend, Eigen::VectorXf::Zero(n).eval());
    all.push_back(make_dense_block(*backend, b, mean, p));
    if (owner[std::size_t(b)] == comm->rank())
      mine.push_back(make_dense_block(*backend, b, mean, p));
  }
  DecoupledEkf<float> single(*backend, UpdateConfig{});
  DecoupledEkf<float> sharded(*backend, UpdateConfig{}, [&](float* data, Index count) {
    ordered->all_reduce_sum(data, std::size_t(count));
  });
  const Tensor<float> r = to_backend(*backend, Eigen::MatrixXf::Identity(m, m).eval());
  std::mt19937 rng(5);  // the same draws on every rank
  std::normal_distribution<float> normal;
  for (int u = 0; u < updates; ++u) {
    std::vector<BlockObservation<float>> all_obs, mine_obs;
    std::size_t k = 0;
    for (int b = 0; b < total; ++b) {
      Eigen::MatrixXf h(m, n);
      for (Eigen::Index i = 0; i < h.size(); ++i) h.data()[i] = normal(rng) / std::sqrt(float(n));
      const Tensor<float> jacobian = to_backend(*backend, h);
      all_obs.push_back({&all[std::size_t(b)], jacobian});
      if (owner[std::size_t(b)] == comm->rank()) mine_obs.push_back({&mine[k++], jacobian});
    }
    Eigen::VectorXf e(m);
    for (Eigen::Index i = 0; i < m; ++i) e(i) = normal(rng);
    const Tensor<float> innovation = to_backend(*backend, e);
    EXPECT_TRUE(single.update(all_obs, innovation, r).applied());
    EXPECT_TRUE(sharded.update(mine_obs, innovation, r).applied());
  }
  double worst = 0, scale = 0;
  std::size_t k = 0;
  for (int b = 0; b < total; ++b) {
    if (owner[std::size_t(b)] != comm->rank()) continue;
    const Eigen::MatrixXf want = to_host(*backend, all[std::size_t(b)].mean);
    const Eigen::MatrixXf got = to_host(*backend, mine[k].mean);
    const Eigen::MatrixXf want_p = to_host(*backend, all[std::size_t(b)].covariance);
    const Eigen::MatrixXf got_p = to_host(*backend, mine[k++].covariance);
    ASSERT_TRUE(got.allFinite() && got_p.allFinite());
    worst = std::max(worst, double((want - got).cwiseAbs().maxCoeff()) /
                                std::max(1e-30, double(want.cwiseAbs().maxCoeff())));
    worst = std::max(worst, double((want_p - got_p).cwiseAbs().maxCoeff()) /
                                double(want_p.cwiseAbs().maxCoeff()));
    scale = std::max(scale, double(want.cwiseAbs().maxCoeff()));
  }
  std::vector<double> per_rank(std::size_t(comm->size()));
  comm->all_gather(&worst, 1, per_rank.data());
  worst = *std::max_element(per_rank.begin(), per_rank.end());
  if (comm->rank() == 0)
    std::printf(
        "stream-ordered fp32 DEKF, %d ranks: sharded vs one GPU, max relative difference "
        "%.3g (means and covariances), |mean| up to %.3g on rank 0\n",
        comm->size(), worst, scale);
  EXPECT_GT(scale, 0.0);
  EXPECT_LE(worst, 1e-5);
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
