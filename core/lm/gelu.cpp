// GELU (tanh approximation) and its derivative, entrywise.
#include "core/lm/gelu.hpp"

#include <cmath>

namespace kwm::lm {
namespace {

template <typename T>
constexpr T kSqrtTwoOverPi = static_cast<T>(0.79788456080286535587989211986876373695);
template <typename T>
constexpr T kCubic = static_cast<T>(0.044715);

}  // namespace

template <typename T>
Matrix<T> gelu(const Matrix<T>& x) {
  const auto inner = kSqrtTwoOverPi<T> * (x.array() + kCubic<T> * x.array().cube());
  return (T(0.5) * x.array() * (T(1) + inner.tanh())).matrix();
}

template <typename T>
Matrix<T> gelu_transpose(const Matrix<T>& x, const Matrix<T>& g) {
  // d/dx [x/2 (1 + tanh u)] = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) u', u' = c (1 + 3 k x^2).
  const auto a = x.array();
  const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic> t =
      (kSqrtTwoOverPi<T> * (a + kCubic<T> * a.cube())).tanh();
  const auto du = kSqrtTwoOverPi<T> * (T(1) + T(3) * kCubic<T> * a.square());
  return (g.array() * (T(0.5) * (T(1) + t) + T(0.5) * a * (T(1) - t.square()) * du)).matrix();
}

template Matrix<double> gelu(const Matrix<double>&);
template Matrix<float> gelu(const Matrix<float>&);
template Matrix<double> gelu_transpose(const Matrix<double>&, const Matrix<double>&);
template Matrix<float> gelu_transpose(const Matrix<float>&, const Matrix<float>&);

}  // namespace kwm::lm
