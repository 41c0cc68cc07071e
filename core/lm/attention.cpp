// Causal multi-head attention per sequence and head: S = Q^T K / sqrt(hd) (query x key), masked
// row softmax P, context = V P^T; and the transposed Jacobian of that map.
#include "core/lm/attention.hpp"

#include <cmath>

namespace kwm::lm {
namespace {

// Row i keeps keys 0..i: softmax over that prefix, zero beyond it.
template <typename T>
void causal_softmax_rows(Matrix<T>& s) {
  const Eigen::Index n = s.rows();
  for (Eigen::Index i = 0; i < n; ++i) {
    auto row = s.row(i).head(i + 1);
    row.array() = (row.array() - row.maxCoeff()).exp();
    row /= row.sum();
    s.row(i).tail(n - i - 1).setZero();
  }
}

}  // namespace

template <typename T>
Matrix<T> causal_attention(const Matrix<T>& qkv, int batch, int length, int n_heads,
                           std::type_identity_t<AttentionCache<T>>* cache) {
  const Eigen::Index d = qkv.rows() / 3, hd = d / n_heads, len = length;
  const T scale = T(1) / std::sqrt(static_cast<T>(hd));
  Matrix<T> context(d, qkv.cols());
  if (cache != nullptr) cache->probabilities.assign(static_cast<std::size_t>(batch * n_heads), {});
  Matrix<T> p(len, len);
  for (int b = 0; b < batch; ++b) {
    const Eigen::Index c0 = static_cast<Eigen::Index>(b) * len;
    for (int h = 0; h < n_heads; ++h) {
      const Eigen::Index r0 = h * hd;
      const auto q = qkv.block(r0, c0, hd, len);
      const auto k = qkv.block(d + r0, c0, hd, len);
      const auto v = qkv.block(2 * d + r0, c0, hd, len);
      p.noalias() = scale * (q.transpose() * k);
      causal_softmax_rows(p);
      context.block(r0, c0, hd, len).noalias() = v * p.transpose();
      if (cache != nullptr) cache->probabilities[static_cast<std::size_t>(b * n_heads + h)] = p;
    }
  }
  return context;
}

template <typename T>
Matrix<T> causal_attention_transpose(const Matrix<T>& qkv, const AttentionCache<T>& cache,
                                     const Matrix<T>& g, int batch, int length, int n_heads) {
  const Eigen::Index d = qkv.rows() / 3, hd = d / n_heads, len = length;
  const T scale = T(1) / std::sqrt(static_cast<T>(hd));
  Matrix<T> back(qkv.rows(), qkv.cols());
  Matrix<T> dp(len, len);
  for (int b = 0; b < batch; ++b) {
    const Eigen::Index c0 = static_cast<Eigen::Index>(b) * len;
    for (int h = 0; h < n_heads; ++h) {
      const Eigen::Index r0 = h * hd;
      const auto& p = cache.probabilities[static_cast<std::size_t>(b * n_heads + h)];
      const auto q = qkv.block(r0, c0, hd, len);
      const auto k = qkv.block(d + r0, c0, hd, len);
      const auto v = qkv.block(2 * d + r0, c0, hd, len);
      const auto gc = g.block(r0, c0, hd, len);
      // context = V P^T
      back.block(2 * d + r0, c0, hd, len).noalias() = gc * p;
      dp.noalias() = gc.transpose() * v;
      // Softmax rows: dS = P (.) (dP - rowsum(P (.) dP)); masked entries have P = 0.
      const Vector<T> row_dot = (p.array() * dp.array()).rowwise().sum();
      dp = (p.array() * (dp.array().colwise() - row_dot.array())).matrix();
      // S = scale Q^T K
      back.block(r0, c0, hd, len).noalias() = scale * (k * dp.transpose());
      back.block(d + r0, c0, hd, len).noalias() = scale * (q * dp);
    }
  }
  return back;
}

template Matrix<double> causal_attention(const Matrix<double>&, int, int, int,
                                         AttentionCache<double>*);
template Matrix<float> causal_attention(const Matrix<float>&, int, int, int,
                                        AttentionCache<float>*);
template Matrix<double> causal_attention_transpose(const Matrix<double>&,
                                                   const AttentionCache<double>&,
                                                   const Matrix<double>&, int, int, int);
template Matrix<float> causal_attention_transpose(const Matrix<float>&,
                                                  const AttentionCache<float>&,
                                                  const Matrix<float>&, int, int, int);

}  // namespace kwm::lm
