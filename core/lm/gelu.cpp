// GELU (tanh approximation) and its derivative, entrywise.
#include "core/lm/gelu.hpp"

#include <cmath>
#include <type_traits>

namespace kwm::lm {
namespace {

template <typename T>
constexpr T kSqrtTwoOverPi = static_cast<T>(0.79788456080286535587989211986876373695);
template <typename T>
constexpr T kCubic = static_cast<T>(0.044715);

template <typename T>
using Array = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic>;

// tanh(sqrt(2/pi) (x + 0.044715 x^3)). Eigen vectorises tanh for float only; for double,
// tanh u = 1 - 2 / (exp(2u) + 1) goes through the vectorised exp (about 3x faster than libm's
// tanh here) with an absolute error of a few ulp of 1, which is what GELU needs: it only ever
// uses 1 + tanh u and 1 - tanh^2 u. exp overflowing to inf gives exactly 1.
template <typename T>
Array<T> gelu_tanh(const Matrix<T>& x) {
  const Array<T> u = kSqrtTwoOverPi<T> * (x.array() + kCubic<T> * x.array().cube());
  if constexpr (std::is_same_v<T, double>) {
    return T(1) - T(2) / ((T(2) * u).exp() + T(1));
  } else {
    return u.tanh();
  }
}

}  // namespace

template <typename T>
Matrix<T> gelu(const Matrix<T>& x) {
  return (T(0.5) * x.array() * (T(1) + gelu_tanh(x))).matrix();
}

template <typename T>
Matrix<T> gelu_transpose(const Matrix<T>& x, const Matrix<T>& g) {
  // d/dx [x/2 (1 + tanh u)] = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) u', u' = c (1 + 3 k x^2).
  const auto a = x.array();
  const Array<T> t = gelu_tanh(x);
  const auto du = kSqrtTwoOverPi<T> * (T(1) + T(3) * kCubic<T> * a.square());
  return (g.array() * (T(0.5) * (T(1) + t) + T(0.5) * a * (T(1) - t.square()) * du)).matrix();
}

template Matrix<double> gelu(const Matrix<double>&);
template Matrix<float> gelu(const Matrix<float>&);
template Matrix<double> gelu_transpose(const Matrix<double>&, const Matrix<double>&);
template Matrix<float> gelu_transpose(const Matrix<float>&, const Matrix<float>&);

}  // namespace kwm::lm
