// A linear layer z = W a + b seen as one shared-row block: the bias is the last column of the
// augmented weight [W b] acting on the augmented input [a; 1]. Plus the packed-triangle helpers
// with which symmetric statistics travel between ranks (n(n+1)/2 values, upper triangle column by
// column, as in distributed/packed_symmetric.hpp).
#pragma once

#include <Eigen/Core>
#include <cstddef>

#include "core/lm/gpt_parameters.hpp"

namespace kwm::lm {

inline Eigen::Index augmented_inputs(const Linear<double>& layer) {
  return layer.weight.cols() + (layer.bias.size() > 0 ? 1 : 0);
}

// [W b] (d_out x (d_in + 1)), or W when the layer has no bias.
inline Eigen::MatrixXd augmented_weight(const Linear<double>& layer) {
  Eigen::MatrixXd w(layer.weight.rows(), augmented_inputs(layer));
  w.leftCols(layer.weight.cols()) = layer.weight;
  if (layer.bias.size() > 0) w.col(layer.weight.cols()) = layer.bias;
  return w;
}

inline void set_augmented_weight(Linear<double>& layer, const Eigen::MatrixXd& w) {
  layer.weight = w.leftCols(layer.weight.cols());
  if (layer.bias.size() > 0) layer.bias = w.col(layer.weight.cols());
}

// [a; 1] column by column when `bias`, else a.
inline Eigen::MatrixXd augmented_input(const Eigen::MatrixXd& a, bool bias) {
  if (!bias) return a;
  Eigen::MatrixXd out(a.rows() + 1, a.cols());
  out.topRows(a.rows()) = a;
  out.row(a.rows()).setOnes();
  return out;
}

inline std::size_t packed_triangle_size(Eigen::Index n) {
  return static_cast<std::size_t>(n) * static_cast<std::size_t>(n + 1) / 2;
}

inline void pack_upper_triangle(const Eigen::MatrixXd& a, double* out) {
  std::size_t k = 0;
  for (Eigen::Index j = 0; j < a.cols(); ++j)
    for (Eigen::Index i = 0; i <= j; ++i) out[k++] = a(i, j);
}

inline Eigen::MatrixXd unpack_symmetric(const double* in, Eigen::Index n) {
  Eigen::MatrixXd a(n, n);
  std::size_t k = 0;
  for (Eigen::Index j = 0; j < n; ++j)
    for (Eigen::Index i = 0; i <= j; ++i) a(i, j) = a(j, i) = in[k++];
  return a;
}

}  // namespace kwm::lm
