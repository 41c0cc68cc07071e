// Symmetric matrices travel as one packed triangle: n(n+1)/2 values, column by column of the upper
// triangle (LAPACK 'U' packed order). Used for every collective that carries H^T R^-1 H.
#pragma once

#include <Eigen/Core>
#include <cstddef>

namespace kwm {

inline std::size_t packed_size(Eigen::Index n) {
  return static_cast<std::size_t>(n) * static_cast<std::size_t>(n + 1) / 2;
}

// Writes the upper triangle of `a` (n x n) to out[0, packed_size(n)); returns the values written.
inline std::size_t pack_upper(const Eigen::Ref<const Eigen::MatrixXd>& a, double* out) {
  std::size_t k = 0;
  for (Eigen::Index j = 0; j < a.cols(); ++j)
    for (Eigen::Index i = 0; i <= j; ++i) out[k++] = a(i, j);
  return k;
}

// Fills both triangles of `a` (n x n) from a packed upper triangle; returns the values read.
inline std::size_t unpack_symmetric(const double* in, Eigen::Ref<Eigen::MatrixXd> a) {
  std::size_t k = 0;
  for (Eigen::Index j = 0; j < a.cols(); ++j)
    for (Eigen::Index i = 0; i <= j; ++i) a(i, j) = a(j, i) = in[k++];
  return k;
}

}  // namespace kwm
