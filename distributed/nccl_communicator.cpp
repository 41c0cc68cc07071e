// NCCL implementation of Communicator. The communicator is created non-blocking so that every
// wait can poll ncclCommGetAsyncError against a deadline; on failure the NCCL communicator is
// aborted and the job ended through the bootstrap (MPI_Abort), naming the rank and the call.
#include "distributed/nccl_communicator.hpp"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>

namespace kwm {
namespace {

template <typename T>
ncclDataType_t nccl_type();
template <>
ncclDataType_t nccl_type<double>() {
  return ncclDouble;
}
template <>
ncclDataType_t nccl_type<float>() {
  return ncclFloat;
}

int env_int(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::atoi(value) : -1;
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& bootstrap, double timeout_seconds)
      : bootstrap_(bootstrap), timeout_(timeout_seconds) {
    const int device = local_gpu(bootstrap_);
    if (bootstrap_.all_reduce_any(device < 0))
      throw std::runtime_error("NCCL communicator: some rank sees no CUDA device");
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    ncclUniqueId id{};
    if (bootstrap_.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    bootstrap_.broadcast_bytes(&id, sizeof id, 0);
    bootstrap_.barrier();
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // every call returns at once; wait() polls with a deadline
    check_nccl(ncclCommInitRankConfig(&comm_, bootstrap_.size(), id, bootstrap_.rank(), &config),
               "ncclCommInitRankConfig");
    wait_for_comm("ncclCommInitRankConfig");
  }
  ~NcclCommunicator() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return bootstrap_.rank(); }
  int size() const override { return bootstrap_.size(); }
  std::string name() const override { return "nccl"; }

  void all_reduce_sum(double* data, std::size_t count) override { reduce(data, count); }
  void all_reduce_sum(float* data, std::size_t count) override { reduce(data, count); }
  bool all_reduce_any(bool flag) override { return bootstrap_.all_reduce_any(flag); }

  void all_gather(const double* send, std::size_t count, double* recv) override {
    before_collective();
    check_nccl(ncclAllGather(send, recv, count, ncclDouble, comm_, stream_), "ncclAllGather");
    wait("ncclAllGather");
  }
  void all_gatherv(const double* send, const std::vector<std::size_t>& counts,
                   double* recv) override {
    // One broadcast per root inside a group: NCCL has no all-gatherv.
    before_collective();
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    std::size_t offset = 0;
    for (int r = 0; r < size(); ++r) {
      const std::size_t count = counts[static_cast<std::size_t>(r)];
      if (count > 0)
        check_nccl(ncclBroadcast(r == rank() ? send : recv + offset, recv + offset, count,
                                 ncclDouble, r, comm_, stream_),
                   "ncclBroadcast");
      offset += count;
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
    wait("ncclGroupEnd (all-gatherv)");
  }
  void broadcast(double* data, std::size_t count, int root) override {
    before_collective();
    check_nccl(ncclBroadcast(data, data, count, ncclDouble, root, comm_, stream_), "ncclBroadcast");
    wait("ncclBroadcast");
  }
  void broadcast_bytes(void* data, std::size_t bytes, int root) override {
    bootstrap_.broadcast_bytes(data, bytes, root);
  }
  void barrier() override {
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    bootstrap_.barrier();
  }
  [[noreturn]] void abort(int exit_code) override {
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
    bootstrap_.abort(exit_code);
    std::_Exit(exit_code);  // not reached; some compilers do not see through the virtual call
  }

 private:
  template <typename T>
  void reduce(T* data, std::size_t count) {
    if (count == 0) return;
    before_collective();
    check_nccl(ncclAllReduce(data, data, count, nccl_type<T>(), ncclSum, comm_, stream_),
               "ncclAllReduce");
    wait("ncclAllReduce");
  }

  // The buffers were written by kernels on other streams of this device (the backend's): finish
  // them before NCCL reads.
  void before_collective() { check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

  [[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "kwm: rank %d: %s; aborting the job\n", rank(), what.c_str());
    std::fflush(stderr);
    abort(4);
    std::_Exit(4);  // not reached (abort is virtual, so say it for the compiler)
  }
  void check_cuda(cudaError_t code, const char* call) {
    if (code != cudaSuccess) fail(std::string(call) + " failed: " + cudaGetErrorString(code));
  }
  void check_nccl(ncclResult_t code, const char* call) {
    if (code != ncclSuccess && code != ncclInProgress)
      fail(std::string(call) + " failed: " + ncclGetErrorString(code) + " (" +
           ncclGetLastError(comm_) + ")");
  }

  // Polls the communicator's asynchronous state until no operation is in progress.
  void wait_for_comm(const char* call) {
    const auto deadline = deadline_from_now();
    for (;;) {
      ncclResult_t state = ncclSuccess;
      check_nccl(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError");
      if (state == ncclSuccess) return;
      if (state != ncclInProgress)
        fail(std::string(call) + ": NCCL error " + ncclGetErrorString(state));
      if (std::chrono::steady_clock::now() > deadline) timed_out(call);
      std::this_thread::yield();
    }
  }

  // Enqueue finished (non-blocking comm), then the stream; both against the deadline, checking
  // the communicator for errors a dead peer raises (e.g. a broken connection).
  void wait(const char* call) {
    wait_for_comm(call);
    const auto deadline = deadline_from_now();
    for (;;) {
      const cudaError_t done = cudaStreamQuery(stream_);
      if (done == cudaSuccess) return;
      if (done != cudaErrorNotReady) check_cuda(done, call);
      ncclResult_t state = ncclSuccess;
      check_nccl(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError");
      if (state != ncclSuccess && state != ncclInProgress)
        fail(std::string(call) + ": NCCL error " + ncclGetErrorString(state));
      if (std::chrono::steady_clock::now() > deadline) timed_out(call);
      std::this_thread::yield();
    }
  }
  [[noreturn]] void timed_out(const char* call) {
    fail(std::string(call) + " did not complete within " + std::to_string(timeout_) +
         " s (a peer rank died or hangs)");
  }
  std::chrono::steady_clock::time_point deadline_from_now() const {
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>(timeout_));
  }

  Communicator& bootstrap_;
  double timeout_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

int local_gpu(const Communicator& bootstrap) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) return -1;
  int local = -1;
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"}) {
    local = env_int(name);
    if (local >= 0) break;
  }
  if (local < 0) local = bootstrap.rank();
  return local % devices;
}

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap,
                                                     double timeout_seconds) {
  return std::make_unique<NcclCommunicator>(bootstrap, timeout_seconds);
}

}  // namespace kwm
