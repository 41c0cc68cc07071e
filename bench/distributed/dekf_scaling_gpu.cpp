// Strong and weak scaling of the sharded DEKF update over GPUs (CUDA backend, fp32), one GPU per
// MPI rank, the collectives through NCCL on device buffers: B dense blocks of n parameters placed
// by LPT, m outputs; every rank forms U_b = P_b H_b^T and its partial H P H^T for the blocks it
// owns, one NCCL all-reduce of the m x m sum (DecoupledEkf's hook, on the device pointer), every
// rank factors S, owners update their means and covariances, then one NCCL all-gather(v) of the
// owners' means (fp32, device to device). The GPU twin of dekf_scaling.cpp.
//   mpirun -np R kwm_dekf_scaling_gpu --blocks 64 --n 1024 --m 8 --updates 30 [--weak]
//       [--gather v|equal|none] [--probe N]
// --weak: --blocks per rank (B = blocks x R), else B = blocks in total. --gather: the means
// through all_gatherv (default), one all_gather (equal blocks per rank), or not at all. --probe:
// after the run, N of each collective alone (the communicator's latency without compute skew).
// One JSON line (rank 0), with the all-reduce and gather times and the ranks' arrival skew at the
// all-reduce split out (medians of the per-update maximum over ranks).
//
// The communicator queues its collectives on the backend's stream (no device-wide synchronise per
// call); the hook below still synchronises the backend first, to time this rank's arrival.
//
// Timing: per update, an MPI barrier, steady_clock, the update and the gather, the backend
// synchronised, steady_clock; the slowest rank's time is the update's time; median over
// --updates after --warmup updates. The communication share is timed the same way inside the
// step (the device synchronised before the clock starts, so it is the collective plus waiting
// for the slower rank, not the local compute queued before it).
//
// The means are fp32 on the device; Communicator::all_gatherv takes doubles, and NCCL's
// all-gather is a byte copy, so each rank's float run is passed as n/2 "doubles" (n even):
// the bytes on the wire are exactly the P fp32 values.
#include <cuda_runtime.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend/cuda/cuda_backend.hpp"
#include "core/backend/host_transfer.hpp"
#include "core/kalman/decoupled_ekf.hpp"
#include "distributed/mpi_communicator.hpp"
#include "distributed/nccl_communicator.hpp"
#include "distributed/placement.hpp"

namespace {

void check(cudaError_t code, const char* what) {
  if (code != cudaSuccess) {
    std::fprintf(stderr, "kwm_dekf_scaling_gpu: %s: %s\n", what, cudaGetErrorString(code));
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double at = q * double(v.size() - 1);
  const auto lo = std::size_t(std::floor(at)), hi = std::size_t(std::ceil(at));
  return v[lo] + (v[hi] - v[lo]) * (at - double(lo));
}

}  // namespace

int main(int argc, char** argv) {
  auto comm = kwm::make_mpi_communicator(&argc, &argv);
  int blocks = 64, n = 1024, m = 8, updates = 30, warmup = 5;
  bool weak = false;
  std::string gather = "v";  // v: all_gatherv (grouped broadcasts); equal: all_gather; none
  int probes = 0;
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
    else if (a == "--warmup")
      warmup = next();
    else if (a == "--weak")
      weak = true;
    else if (a == "--gather" && i + 1 < argc)
      gather = argv[++i];
    else if (a == "--probe")
      probes = next();
  }
  if (n % 2 != 0 || blocks <= 0 || m <= 0 || updates <= 0 ||
      (gather != "v" && gather != "equal" && gather != "none")) {
    if (comm->rank() == 0)
      std::fprintf(stderr, "need n even, blocks, m, updates > 0, --gather v|equal|none\n");
    return 2;
  }
  // This rank's GPU (local rank mod devices), then the backend on it, then NCCL queued on the
  // backend's stream: the collectives follow the update's kernels in stream order.
  check(cudaSetDevice(std::max(kwm::local_gpu(*comm), 0)), "cudaSetDevice");
  // Device memory in use from here on counts as this process's: the backend's handles, NCCL's
  // buffers and the blocks.
  std::size_t free0 = 0, total_mem = 0;
  check(cudaMemGetInfo(&free0, &total_mem), "cudaMemGetInfo");
  auto backend = kwm::make_backend<float>("cuda");
  auto* cuda_backend = dynamic_cast<kwm::CudaBackend<float>*>(backend.get());
  if (cuda_backend == nullptr) {
    std::fprintf(stderr, "kwm_dekf_scaling_gpu: the cuda backend is not a CudaBackend\n");
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
  auto nccl = kwm::make_nccl_communicator(*comm, 120.0, cuda_backend->stream());
  int device = -1;
  check(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");

  const int total_blocks = weak ? blocks * comm->size() : blocks;
  std::vector<kwm::BlockCost> costs;
  for (int b = 0; b < total_blocks; ++b) costs.push_back({b, double(n) * n});
  const kwm::Placement placement = kwm::place_blocks(costs, comm->size());

  int owned = 0;
  for (int b = 0; b < total_blocks; ++b) owned += placement.owner[std::size_t(b)] == comm->rank();
  const std::size_t mine_floats = std::size_t(owned) * std::size_t(n);
  const std::size_t all_floats = std::size_t(total_blocks) * std::size_t(n);
  float* send = nullptr;
  float* all = nullptr;
  check(cudaMalloc(&send, std::max<std::size_t>(mine_floats, 2) * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&all, all_floats * sizeof(float)), "cudaMalloc");
  check(cudaMemset(send, 0, std::max<std::size_t>(mine_floats, 2) * sizeof(float)), "cudaMemset");
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");  // the backend's stream is non-blocking
  std::vector<kwm::ParameterBlock<float>> mine;
  std::vector<kwm::Tensor<float>> jacobians;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  Eigen::MatrixXf h(m, n);
  for (int b = 0; b < total_blocks; ++b) {
    for (Eigen::Index i = 0; i < h.size(); ++i) h.data()[i] = normal(rng) / std::sqrt(float(n));
    if (placement.owner[std::size_t(b)] != comm->rank()) continue;
    kwm::Tensor<float> p = backend->allocate(n, n);  // zero-filled
    backend->add_identity(1.0f, p);
    // The block's mean then becomes its slice of the send buffer (zero-filled above; the factory
    // keeps its own copy of the mean it is given).
    const kwm::Tensor<float> mean(
        n, 1, std::shared_ptr<float>(send + mine.size() * std::size_t(n), [](float*) {}),
        kwm::MemorySpace::cuda);
    mine.push_back(kwm::make_dense_block(*backend, b, mean, p));
    mine.back().mean = mean;
    jacobians.push_back(kwm::to_backend(*backend, h));
  }
  backend->synchronize();

  std::size_t reduced_bytes = 0, gathered_bytes = 0;
  double reduce_seconds = 0, gather_seconds = 0;
  // Seconds from the step's start to this rank's arrival at the all-reduce (its local phase 1).
  auto step_start = std::chrono::steady_clock::now();
  double arrival = 0;
  kwm::UpdateConfig config;
  kwm::DecoupledEkf<float> ekf(*backend, config, [&](float* data, kwm::Index count) {
    backend->synchronize();
    const auto t = std::chrono::steady_clock::now();
    arrival = std::chrono::duration<double>(t - step_start).count();
    reduced_bytes += std::size_t(count) * sizeof(float);
    nccl->all_reduce_sum(data, std::size_t(count));
    reduce_seconds += seconds_since(t);
  });
  std::vector<kwm::BlockObservation<float>> observations;
  for (std::size_t i = 0; i < mine.size(); ++i) observations.push_back({&mine[i], jacobians[i]});
  const kwm::Tensor<float> e = kwm::to_backend(*backend, Eigen::VectorXf::Constant(m, 0.1f));
  const kwm::Tensor<float> r = kwm::to_backend(*backend, Eigen::MatrixXf::Identity(m, m).eval());

  // Means gathered in rank order (each owner's blocks in its placement order).
  std::vector<std::size_t> counts(std::size_t(comm->size()), 0);  // in doubles (2 floats each)
  for (int b = 0; b < total_blocks; ++b)
    counts[std::size_t(placement.owner[std::size_t(b)])] += std::size_t(n) / 2;
  // --gather equal: one all_gather when every rank owns as many blocks (the placement's even
  // split), instead of all_gatherv's grouped broadcasts.
  const bool equal_counts =
      std::all_of(counts.begin(), counts.end(), [&](std::size_t c) { return c == counts.front(); });
  if (gather == "equal" && !equal_counts) {
    if (comm->rank() == 0) std::fprintf(stderr, "--gather equal needs equal blocks per rank\n");
    return 2;
  }
  auto gather_means = [&] {
    if (gather == "v") {
      nccl->all_gatherv(reinterpret_cast<const double*>(send), counts,
                        reinterpret_cast<double*>(all));
    } else if (gather == "equal") {
      nccl->all_gather(reinterpret_cast<const double*>(send), counts.front(),
                       reinterpret_cast<double*>(all));
    }
  };
  int applied = 0;
  auto step = [&] {
    applied += ekf.update(observations, e, r).applied() ? 1 : 0;
    backend->synchronize();
    const auto t = std::chrono::steady_clock::now();
    gather_means();
    gather_seconds += seconds_since(t);
    if (gather != "none") gathered_bytes += all_floats * sizeof(float);
  };

  for (int k = 0; k < warmup; ++k) step();
  reduced_bytes = gathered_bytes = 0;
  reduce_seconds = gather_seconds = 0;
  std::vector<double> times, comm_times, reduce_times, gather_times, arrivals, arrivals_min;
  for (int k = 0; k < updates; ++k) {
    const double reduce_before = reduce_seconds, gather_before = gather_seconds;
    comm->barrier();
    step_start = std::chrono::steady_clock::now();
    step();
    backend->synchronize();
    times.push_back(seconds_since(step_start));
    reduce_times.push_back(reduce_seconds - reduce_before);
    gather_times.push_back(gather_seconds - gather_before);
    comm_times.push_back(reduce_times.back() + gather_times.back());
    arrivals.push_back(arrival);
  }
  // The skew at the all-reduce: latest minus earliest arrival over ranks, per update.
  arrivals_min = arrivals;
  MPI_Allreduce(MPI_IN_PLACE, arrivals.data(), int(arrivals.size()), MPI_DOUBLE, MPI_MAX,
                MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, arrivals_min.data(), int(arrivals_min.size()), MPI_DOUBLE, MPI_MIN,
                MPI_COMM_WORLD);
  std::vector<double> skews(arrivals.size());
  for (std::size_t k = 0; k < skews.size(); ++k) skews[k] = arrivals[k] - arrivals_min[k];
  MPI_Allreduce(MPI_IN_PLACE, reduce_times.data(), int(reduce_times.size()), MPI_DOUBLE, MPI_MAX,
                MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, gather_times.data(), int(gather_times.size()), MPI_DOUBLE, MPI_MAX,
                MPI_COMM_WORLD);

  // --probe N: the collectives alone, N times each after an MPI barrier with the device idle:
  // the communicator's own latency, no compute skew (the slowest rank's time, median).
  std::vector<double> probe_reduce, probe_gather;
  kwm::Tensor<float> probe_buffer = backend->allocate(m, m);
  backend->synchronize();
  for (int k = 0; k < probes; ++k) {
    comm->barrier();
    auto t = std::chrono::steady_clock::now();
    nccl->all_reduce_sum(probe_buffer.data(), std::size_t(m) * std::size_t(m));
    probe_reduce.push_back(seconds_since(t));
    comm->barrier();
    t = std::chrono::steady_clock::now();
    gather_means();
    probe_gather.push_back(seconds_since(t));
  }
  if (probes > 0) {
    MPI_Allreduce(MPI_IN_PLACE, probe_reduce.data(), probes, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, probe_gather.data(), probes, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  }

  // The update's time is the slowest rank's.
  MPI_Allreduce(MPI_IN_PLACE, times.data(), int(times.size()), MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, comm_times.data(), int(comm_times.size()), MPI_DOUBLE, MPI_MAX,
                MPI_COMM_WORLD);

  std::size_t free1 = 0;
  check(cudaMemGetInfo(&free1, &total_mem), "cudaMemGetInfo");
  double covariance_bytes = 0;
  for (auto& block : mine) covariance_bytes += double(block.covariance.size()) * sizeof(float);
  double max_cov = covariance_bytes, min_cov = covariance_bytes;
  double used = double(free0) - double(free1);  // this process's device allocations since start
  MPI_Allreduce(MPI_IN_PLACE, &max_cov, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &min_cov, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &used, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  int min_applied = applied;
  MPI_Allreduce(MPI_IN_PLACE, &min_applied, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);

  // Checksum of the gathered means (order-free up to rounding): 1 and R GPUs must agree.
  std::vector<float> host(all_floats);
  check(cudaMemcpy(host.data(), all, all_floats * sizeof(float), cudaMemcpyDeviceToHost),
        "cudaMemcpy");
  double checksum = 0, finite = 1;
  for (float v : host) {
    checksum += std::fabs(double(v));
    if (!std::isfinite(v)) finite = 0;
  }
  check(cudaFree(send), "cudaFree");
  check(cudaFree(all), "cudaFree");

  if (comm->rank() == 0)
    std::printf(
        "{\"ranks\": %d, \"mode\": \"%s\", \"blocks\": %d, \"n\": %d, \"m\": %d, "
        "\"updates\": %d, \"warmup\": %d, \"gpu\": \"%s\", "
        "\"median_ms\": %.6g, \"p10_ms\": %.6g, \"p90_ms\": %.6g, \"min_ms\": %.6g, "
        "\"comm_median_ms\": %.6g, \"allreduce_bytes_per_update\": %zu, "
        "\"gather_bytes_per_update\": %zu, \"imbalance\": %.4f, "
        "\"max_covariance_bytes_per_gpu\": %.6g, \"min_covariance_bytes_per_gpu\": %.6g, "
        "\"max_device_bytes_allocated\": %.6g, \"applied_updates_min\": %d, "
        "\"means_abs_sum\": %.10g, \"means_finite\": %s, \"gather\": \"%s\", "
        "\"reduce_median_ms\": %.6g, \"gather_median_ms\": %.6g, \"skew_median_ms\": %.6g, "
        "\"probes\": %d, \"probe_allreduce_ms\": %.6g, \"probe_gather_ms\": %.6g}\n",
        comm->size(), weak ? "weak" : "strong", total_blocks, n, m, updates, warmup, prop.name,
        1e3 * quantile(times, 0.5), 1e3 * quantile(times, 0.1), 1e3 * quantile(times, 0.9),
        1e3 * quantile(times, 0.0), 1e3 * quantile(comm_times, 0.5),
        reduced_bytes / std::size_t(updates), gathered_bytes / std::size_t(updates),
        placement.imbalance(), max_cov, min_cov, used, min_applied, checksum,
        finite != 0 ? "true" : "false", gather.c_str(), 1e3 * quantile(reduce_times, 0.5),
        1e3 * quantile(gather_times, 0.5), 1e3 * quantile(skews, 0.5), probes,
        1e3 * quantile(probe_reduce, 0.5), 1e3 * quantile(probe_gather, 0.5));
  std::fflush(stdout);
  nccl.reset();
  return 0;
}
