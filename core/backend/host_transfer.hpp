// Moving Eigen matrices in and out of a backend: the only place host and device layouts meet.
#pragma once

#include <Eigen/Core>

#include "core/backend/backend.hpp"

namespace kwm {

template <typename T>
using HostMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
template <typename T>
using HostVector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

template <typename T, typename Derived>
Tensor<T> to_backend(Backend<T>& backend, const Eigen::MatrixBase<Derived>& host) {
  const HostMatrix<T> dense = host.template cast<T>();
  Tensor<T> t = backend.allocate(dense.rows(), dense.cols());
  if (t.size() > 0) backend.upload(dense.data(), t);
  return t;
}

template <typename T>
HostMatrix<T> to_host(Backend<T>& backend, const Tensor<T>& t) {
  HostMatrix<T> host(t.rows(), t.cols());
  if (t.size() > 0) backend.download(t, host.data());
  return host;
}

}  // namespace kwm
