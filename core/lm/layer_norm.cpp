// Layer normalisation per column and its transposed Jacobian.
#include "core/lm/layer_norm.hpp"

namespace kwm::lm {

template <typename T>
Matrix<T> layer_norm(const LayerNormParams<T>& params, const Matrix<T>& x,
                     std::type_identity_t<T> eps, std::type_identity_t<LayerNormCache<T>>* cache) {
  const auto d = static_cast<T>(x.rows());
  const Eigen::Matrix<T, 1, Eigen::Dynamic> mean = x.colwise().sum() / d;
  Matrix<T> centered = x.rowwise() - mean;
  // Biased variance (divide by d), as GPT-2 and torch.nn.LayerNorm.
  const Eigen::Matrix<T, 1, Eigen::Dynamic> inverse_std =
      ((centered.array().square().colwise().sum() / d) + eps).rsqrt().matrix();
  centered.array().rowwise() *= inverse_std.array();
  Matrix<T> y = (centered.array().colwise() * params.gain.array()).colwise() + params.bias.array();
  if (cache != nullptr) {
    cache->normalized = std::move(centered);
    cache->inverse_std = inverse_std.transpose();
  }
  return y;
}

template <typename T>
Matrix<T> layer_norm_transpose(const LayerNormParams<T>& params, const LayerNormCache<T>& cache,
                               const Matrix<T>& g, LayerNormParams<T>& params_out) {
  const auto& xhat = cache.normalized;
  params_out.gain += (g.array() * xhat.array()).rowwise().sum().matrix();
  params_out.bias += g.rowwise().sum();
  // With gh = gain (.) g: J_x^T g = inverse_std * (gh - mean(gh) - xhat mean(gh (.) xhat)).
  const auto d = static_cast<T>(g.rows());
  const Matrix<T> gh = g.array().colwise() * params.gain.array();
  const Eigen::Matrix<T, 1, Eigen::Dynamic> mean_gh = gh.colwise().sum() / d;
  const Eigen::Matrix<T, 1, Eigen::Dynamic> mean_gh_xhat =
      (gh.array() * xhat.array()).colwise().sum().matrix() / d;
  Matrix<T> back = gh.rowwise() - mean_gh;
  back.array() -= xhat.array().rowwise() * mean_gh_xhat.array();
  back.array().rowwise() *= cache.inverse_std.transpose().array();
  return back;
}

template Matrix<double> layer_norm(const LayerNormParams<double>&, const Matrix<double>&, double,
                                   LayerNormCache<double>*);
template Matrix<float> layer_norm(const LayerNormParams<float>&, const Matrix<float>&, float,
                                  LayerNormCache<float>*);
template Matrix<double> layer_norm_transpose(const LayerNormParams<double>&,
                                             const LayerNormCache<double>&, const Matrix<double>&,
                                             LayerNormParams<double>&);
template Matrix<float> layer_norm_transpose(const LayerNormParams<float>&,
                                            const LayerNormCache<float>&, const Matrix<float>&,
                                            LayerNormParams<float>&);

}  // namespace kwm::lm
