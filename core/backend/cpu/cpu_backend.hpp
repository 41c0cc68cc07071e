// The Eigen CPU backend: the reference every other backend is tested against (fp64), and a
// fast path in fp32. Kernels map Tensor storage as Eigen matrices; nothing is copied.
#pragma once

#include <memory>

#include "core/backend/backend.hpp"

namespace kwm {

template <typename T>
std::unique_ptr<Backend<T>> make_cpu_backend();

}  // namespace kwm
