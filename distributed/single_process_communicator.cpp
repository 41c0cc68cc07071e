// Single-process Communicator: a build without MPI runs every learner through this.
#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "distributed/communicator.hpp"

namespace kwm {
namespace {

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single"; }
  void all_reduce_sum(double*, std::size_t) override {}
  void all_reduce_sum(float*, std::size_t) override {}
  bool all_reduce_any(bool flag) override { return flag; }
  void all_gather(const double* send, std::size_t count, double* recv) override {
    std::copy(send, send + count, recv);
  }
  void all_gatherv(const double* send, const std::vector<std::size_t>& counts,
                   double* recv) override {
    const std::size_t count = std::accumulate(counts.begin(), counts.end(), std::size_t{0});
    std::copy(send, send + count, recv);
  }
  void broadcast(double*, std::size_t, int) override {}
  void broadcast_bytes(void*, std::size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int exit_code) override { std::exit(exit_code); }
};

}  // namespace

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

}  // namespace kwm
