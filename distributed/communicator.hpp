// Communicator: the six collectives KWM ranks use to exchange innovation statistics.
// Implementations: single process (no MPI needed, this file's companion), MPI on CPU buffers and
// NCCL on GPU buffers (the Distributed issue). Sums are in place; every rank passes the same count.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

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
  virtual void broadcast(double* data, std::size_t count, int root) = 0;
  virtual void barrier() = 0;
};

// The one-rank communicator: every collective is the identity.
std::unique_ptr<Communicator> make_single_process_communicator();

}  // namespace kwm
