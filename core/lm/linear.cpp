// The affine layer and its transposed Jacobian, as whole-block matrix products.
#include "core/lm/linear.hpp"

namespace kwm::lm {

template <typename T>
Matrix<T> affine(const Matrix<T>& weight, const Vector<T>& bias, const Matrix<T>& input) {
  Matrix<T> z(weight.rows(), input.cols());
  z.noalias() = weight * input;
  if (bias.size() != 0) z.colwise() += bias;
  return z;
}

template <typename T>
Matrix<T> affine_transpose(const Matrix<T>& weight, const Matrix<T>& input, const Matrix<T>& g,
                           Matrix<T>& weight_out, Vector<T>& bias_out) {
  // z = W a + b: J_W^T g = g a^T (the shared-row structure of ALGORITHMS.md section 4).
  weight_out.noalias() += g * input.transpose();
  if (bias_out.size() != 0) bias_out += g.rowwise().sum();
  Matrix<T> back(weight.cols(), g.cols());
  back.noalias() = weight.transpose() * g;
  return back;
}

template Matrix<double> affine(const Matrix<double>&, const Vector<double>&, const Matrix<double>&);
template Matrix<float> affine(const Matrix<float>&, const Vector<float>&, const Matrix<float>&);
template Matrix<double> affine_transpose(const Matrix<double>&, const Matrix<double>&,
                                         const Matrix<double>&, Matrix<double>&, Vector<double>&);
template Matrix<float> affine_transpose(const Matrix<float>&, const Matrix<float>&,
                                        const Matrix<float>&, Matrix<float>&, Vector<float>&);

}  // namespace kwm::lm
