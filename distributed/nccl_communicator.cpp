// NCCL implementation of Communicator. The communicator is a blocking one: a non-blocking NCCL
// communicator hands every collective to a new host thread (pthread_create per call in NCCL's
// group launch), which cost about 0.1 ms per collective on two H200s. Collectives are queued on
// one stream (the caller's, when given) and the call then polls that stream alone, checking
// ncclCommGetAsyncError against a deadline; on failure the NCCL communicator is aborted and the
// job ended through the bootstrap (MPI_Abort), naming the rank and the call. A blocking NCCL call
// that never returns (an init or a first connection to a dead peer) cannot report itself, so a
// watchdog thread ends the rank with the same kind of message once the deadline has passed.
#include "distributed/nccl_communicator.hpp"

#include "distributed/node_local_rank.hpp"

#include <nccl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

namespace kwm {
namespace {

using Clock = std::chrono::steady_clock;

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

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// Ends this process (exit code 4) when a call armed with arm() is still running after the limit.
// Arming is two atomic stores, so every collective can afford it; the thread looks every 50 ms.
// mpirun then ends the other ranks (a rank exited without finalising).
class Watchdog {
 public:
  Watchdog(int rank, double limit_seconds)
      : rank_(rank), limit_seconds_(limit_seconds), thread_([this] { watch(); }) {}
  ~Watchdog() {
    stop_.store(true);
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void arm(const char* call) {
    call_.store(call);
    deadline_.store((Clock::now() + seconds(limit_seconds_)).time_since_epoch().count());
  }
  void disarm() { deadline_.store(kIdle); }

 private:
  static constexpr Clock::rep kIdle = 0;
  void watch() {
    while (!stop_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const Clock::rep deadline = deadline_.load();
      if (deadline != kIdle && Clock::now().time_since_epoch().count() > deadline) {
        std::fprintf(stderr,
                     "kwm: rank %d: %s did not return within %g s (a peer rank died or hangs); "
                     "ending this rank\n",
                     rank_, call_.load(), limit_seconds_);
        std::fflush(stderr);
        std::_Exit(4);
      }
    }
  }

  const int rank_;
  const double limit_seconds_;
  std::atomic<const char*> call_{""};
  std::atomic<Clock::rep> deadline_{kIdle};
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts once the members above exist
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& bootstrap, double timeout_seconds, cudaStream_t stream)
      : bootstrap_(bootstrap),
        timeout_(timeout_seconds),
        // The polling loops below report first (through MPI_Abort); the watchdog is the backstop
        // for a thread stuck inside NCCL, so it waits a little longer.
        watchdog_(bootstrap.rank(), timeout_seconds + 5.0),
        stream_(stream),
        own_stream_(stream == nullptr) {
    const int device = local_gpu(bootstrap_);
    if (bootstrap_.all_reduce_any(device < 0))
      throw std::runtime_error("NCCL communicator: some rank sees no CUDA device");
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    if (own_stream_)
      check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    ncclUniqueId id{};
    if (bootstrap_.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    bootstrap_.broadcast_bytes(&id, sizeof id, 0);
    bootstrap_.barrier();
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 1;  // collectives launch on this thread; see the file comment
    watchdog_.arm("ncclCommInitRankConfig");
    check_nccl(ncclCommInitRankConfig(&comm_, bootstrap_.size(), id, bootstrap_.rank(), &config),
               "ncclCommInitRankConfig");
    watchdog_.disarm();
  }
  ~NcclCommunicator() override {
    watchdog_.arm("ncclCommDestroy");
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    if (own_stream_ && stream_ != nullptr) cudaStreamDestroy(stream_);
    watchdog_.disarm();
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
    before("ncclAllGather");
    check_nccl(ncclAllGather(send, recv, count, ncclDouble, comm_, stream_), "ncclAllGather");
    finish("ncclAllGather");
  }
  void all_gatherv(const double* send, const std::vector<std::size_t>& counts,
                   double* recv) override {
    // One broadcast per root inside a group: NCCL has no all-gatherv.
    before("ncclGroupEnd (all-gatherv)");
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
    finish("ncclGroupEnd (all-gatherv)");
  }
  void broadcast(double* data, std::size_t count, int root) override {
    before("ncclBroadcast");
    check_nccl(ncclBroadcast(data, data, count, ncclDouble, root, comm_, stream_), "ncclBroadcast");
    finish("ncclBroadcast");
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
    before("ncclAllReduce");
    check_nccl(ncclAllReduce(data, data, count, nccl_type<T>(), ncclSum, comm_, stream_),
               "ncclAllReduce");
    finish("ncclAllReduce");
  }

  // On the caller's stream the collective is ordered after the kernels that wrote the buffers;
  // on our own stream it is not, so those kernels (on streams we cannot see) must finish first.
  void before(const char* call) {
    watchdog_.arm(call);
    if (own_stream_) check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }
  void finish(const char* call) {
    wait(call);
    watchdog_.disarm();
  }

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
    if (code != ncclSuccess)
      fail(std::string(call) + " failed: " + ncclGetErrorString(code) + " (" +
           ncclGetLastError(comm_) + ")");
  }

  // The stream, against the deadline, checking the communicator for the errors a dead peer
  // raises (e.g. a broken connection). Only this stream: other work on the device runs on.
  void wait(const char* call) {
    const auto deadline = Clock::now() + seconds(timeout_);
    for (;;) {
      const cudaError_t done = cudaStreamQuery(stream_);
      if (done == cudaSuccess) return;
      if (done != cudaErrorNotReady) check_cuda(done, call);
      ncclResult_t state = ncclSuccess;
      check_nccl(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError");
      if (state != ncclSuccess && state != ncclInProgress)
        fail(std::string(call) + ": NCCL error " + ncclGetErrorString(state));
      if (Clock::now() > deadline)
        fail(std::string(call) + " did not complete within " + std::to_string(timeout_) +
             " s (a peer rank died or hangs)");
      std::this_thread::yield();
    }
  }

  Communicator& bootstrap_;
  double timeout_;
  Watchdog watchdog_;
  cudaStream_t stream_;
  bool own_stream_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

int local_gpu(const Communicator& bootstrap) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) return -1;
  return node_local_rank(bootstrap) % devices;
}

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap,
                                                     double timeout_seconds, cudaStream_t stream) {
  return std::make_unique<NcclCommunicator>(bootstrap, timeout_seconds, stream);
}

}  // namespace kwm
