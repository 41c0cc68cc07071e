// Communicator: the collectives KWM ranks use to exchange innovation statistics and means.
// Implementations: single process (no MPI needed, this file's companion), MPI on CPU buffers
// (mpi_communicator.hpp) and NCCL on GPU buffers (nccl_communicator.hpp). Sums are in place;
// every rank passes the same count, and every rank issues the same collectives in the same order.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace kwm {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;

  virtual void all_reduce_sum(double* data, std::size_t count) = 0;
  virtual void all_reduce_sum(float* data, std::size_t count) = 0;
  // Logical OR of a flag over ranks: every skip/inflate/NaN decision goes through this so that all
  // ranks issue the same collectives afterwards.
  virtual bool all_reduce_any(bool flag) = 0;
  // Concatenates `count` values from every rank, in rank order, into recv (size() * count).
  virtual void all_gather(const double* send, std::size_t count, double* recv) = 0;
  // The same with a different count per rank: rank r sends counts[r] values (counts has size()
  // entries, identical on every rank); recv holds sum(counts) values in rank order.
  virtual void all_gatherv(const double* send, const std::vector<std::size_t>& counts,
                           double* recv) = 0;
  virtual void broadcast(double* data, std::size_t count, int root) = 0;
  // Raw bytes (e.g. an NCCL unique id), host memory.
  virtual void broadcast_bytes(void* data, std::size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `exit_code` (MPI_Abort); single process: std::exit. For
  // failures one rank sees alone, which would otherwise leave the others waiting in a collective.
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

// The one-rank communicator: every collective is the identity.
std::unique_ptr<Communicator> make_single_process_communicator();

}  // namespace kwm
