// The all-reduce-sum hook through which the distributed layer joins the filter's partial sums.
// Single process: an empty function, i.e. the identity.
#pragma once

#include <functional>

#include "core/backend/tensor.hpp"

namespace kwm {

// Sums `count` values in place over all ranks. `data` lives in the memory of the backend the
// filter runs on (a device pointer on CUDA, so NCCL can take it directly; MPI callers on a GPU
// backend stage through the host themselves). Every rank calls it the same number of times.
template <typename T>
using AllReduceSum = std::function<void(T* data, Index count)>;

template <typename T>
void all_reduce_sum(const AllReduceSum<T>& reduce, Tensor<T>& x) {
  if (reduce && x.size() > 0) reduce(x.data(), x.size());
}

}  // namespace kwm
