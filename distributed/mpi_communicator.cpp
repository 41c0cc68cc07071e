// MPI implementation of Communicator; every call is checked and a failure aborts the job with
// the MPI error string (a hung collective is worse than a dead job).
#include "distributed/mpi_communicator.hpp"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <vector>

namespace kwm {
namespace {

void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::fprintf(stderr, "kwm: rank %d: %s failed: %.*s\n", rank, call, length, text);
  MPI_Abort(MPI_COMM_WORLD, 3);
}

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}
template <>
MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(int* argc, char*** argv) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      int provided = 0;
      check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owns_mpi_ = true;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  }
  ~MpiCommunicator() override {
    if (owns_mpi_) MPI_Finalize();
  }
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  void all_reduce_sum(double* data, std::size_t count) override { reduce(data, count); }
  void all_reduce_sum(float* data, std::size_t count) override { reduce(data, count); }

  bool all_reduce_any(bool flag) override {
    int local = flag ? 1 : 0;
    int global = 0;
    check(MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD), "MPI_Allreduce");
    return global != 0;
  }
  void all_gather(const double* send, std::size_t count, double* recv) override {
    check(MPI_Allgather(send, static_cast<int>(count), MPI_DOUBLE, recv, static_cast<int>(count),
                        MPI_DOUBLE, MPI_COMM_WORLD),
          "MPI_Allgather");
  }
  void all_gatherv(const double* send, const std::vector<std::size_t>& counts,
                   double* recv) override {
    std::vector<int> sizes(counts.size()), offsets(counts.size());
    for (std::size_t r = 0; r < counts.size(); ++r) sizes[r] = static_cast<int>(counts[r]);
    std::exclusive_scan(sizes.begin(), sizes.end(), offsets.begin(), 0);
    check(MPI_Allgatherv(send, sizes[static_cast<std::size_t>(rank_)], MPI_DOUBLE, recv,
                         sizes.data(), offsets.data(), MPI_DOUBLE, MPI_COMM_WORLD),
          "MPI_Allgatherv");
  }
  void broadcast(double* data, std::size_t count, int root) override {
    check(MPI_Bcast(data, static_cast<int>(count), MPI_DOUBLE, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
  void broadcast_bytes(void* data, std::size_t bytes, int root) override {
    check(MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  [[noreturn]] void abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
  }

 private:
  template <typename T>
  void reduce(T* data, std::size_t count) {
    if (size_ == 1 || count == 0) return;
    if (count > kOrderedReductionLimit) {
      check(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), mpi_type<T>(), MPI_SUM,
                          MPI_COMM_WORLD),
            "MPI_Allreduce");
      return;
    }
    // Fixed order: every rank adds the same partials in rank order, so all ranks hold bitwise
    // identical sums and a rerun on the same rank count reproduces them exactly.
    std::vector<T> gathered(count * static_cast<std::size_t>(size_));
    check(MPI_Allgather(data, static_cast<int>(count), mpi_type<T>(), gathered.data(),
                        static_cast<int>(count), mpi_type<T>(), MPI_COMM_WORLD),
          "MPI_Allgather");
    for (std::size_t i = 0; i < count; ++i) {
      T sum = gathered[i];
      for (int r = 1; r < size_; ++r) sum += gathered[static_cast<std::size_t>(r) * count + i];
      data[i] = sum;
    }
  }

  int rank_ = 0;
  int size_ = 1;
  bool owns_mpi_ = false;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(int* argc, char*** argv) {
  return std::make_unique<MpiCommunicator>(argc, argv);
}

}  // namespace kwm
