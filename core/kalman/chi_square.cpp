// Regularised incomplete gamma (series / Lentz continued fraction, Numerical Recipes 6.2) and
// the chi-square quantile by safeguarded Newton iteration.
#include "core/kalman/chi_square.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace kwm {
namespace {

constexpr double kEpsilon = 1e-16;
constexpr double kTiny = 1e-300;
constexpr int kMaxTerms = 100000;

// log of the prefactor x^a e^-x / Gamma(a) shared by both expansions.
double log_prefactor(double a, double x) { return a * std::log(x) - x - std::lgamma(a); }

// P(a, x) by its power series; converges fast for x < a + 1.
double gamma_p_series(double a, double x) {
  double term = 1.0 / a;
  double sum = term;
  for (int n = 1; n < kMaxTerms; ++n) {
    term *= x / (a + n);
    sum += term;
    if (std::fabs(term) < std::fabs(sum) * kEpsilon) break;
  }
  return sum * std::exp(log_prefactor(a, x));
}

// Q(a, x) by its continued fraction (modified Lentz); converges fast for x >= a + 1.
double gamma_q_continued_fraction(double a, double x) {
  double b = x + 1.0 - a;
  double c = 1.0 / kTiny;
  double d = 1.0 / b;
  double h = d;
  for (int i = 1; i < kMaxTerms; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < kEpsilon) break;
  }
  return std::exp(log_prefactor(a, x)) * h;
}

// (P, Q) at once, each computed from the expansion that does not cancel.
std::pair<double, double> regularized_gamma(double a, double x) {
  if (x <= 0.0) return {0.0, 1.0};
  if (x < a + 1.0) {
    const double p = gamma_p_series(a, x);
    return {p, 1.0 - p};
  }
  const double q = gamma_q_continued_fraction(a, x);
  return {1.0 - q, q};
}

void require_domain(double a, double x) {
  if (!(a > 0.0) || !std::isfinite(a) || !(x >= 0.0)) {
    std::ostringstream message;
    message << "regularized incomplete gamma needs a > 0 and x >= 0; got a = " << a
            << ", x = " << x;
    throw std::invalid_argument(message.str());
  }
}

}  // namespace

double regularized_gamma_p(double a, double x) {
  require_domain(a, x);
  if (std::isinf(x)) return 1.0;
  return regularized_gamma(a, x).first;
}

double regularized_gamma_q(double a, double x) {
  require_domain(a, x);
  if (std::isinf(x)) return 0.0;
  return regularized_gamma(a, x).second;
}

double chi_square_cdf(double x, double dof) {
  if (x <= 0.0) return 0.0;
  return regularized_gamma_p(0.5 * dof, 0.5 * x);
}

double normal_quantile(double probability) {
  if (!(probability > 0.0 && probability < 1.0)) {
    std::ostringstream message;
    message << "normal quantile needs a probability in (0, 1); got " << probability;
    throw std::invalid_argument(message.str());
  }
  // Acklam's coefficients.
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double low = 0.02425;
  double z = 0.0;
  if (probability < low) {
    const double q = std::sqrt(-2.0 * std::log(probability));
    z = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  } else if (probability <= 1.0 - low) {
    const double q = probability - 0.5;
    const double r = q * q;
    z = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  } else {
    const double q = std::sqrt(-2.0 * std::log1p(-probability));
    z = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  }
  // One Halley step on Phi(z) - p, Phi(z) = erfc(-z / sqrt 2) / 2.
  const double e = 0.5 * std::erfc(-z / std::sqrt(2.0)) - probability;
  const double u = e * std::sqrt(2.0 * std::numbers::pi) * std::exp(0.5 * z * z);
  return z - u / (1.0 + 0.5 * z * u);
}

double chi_square_quantile(double probability, double dof) {
  if (!(probability > 0.0 && probability < 1.0)) {
    std::ostringstream message;
    message << "chi-square quantile needs a probability in (0, 1); got " << probability;
    throw std::invalid_argument(message.str());
  }
  if (!(dof > 0.0) || !std::isfinite(dof)) {
    std::ostringstream message;
    message << "chi-square quantile needs dof > 0; got " << dof;
    throw std::invalid_argument(message.str());
  }
  const double a = 0.5 * dof;
  const bool upper = probability > 0.5;  // iterate on Q = 1 - p there: no cancellation
  const double target = upper ? 1.0 - probability : probability;

  // Wilson-Hilferty: (X / k)^(1/3) is nearly normal with mean 1 - 2/(9k), variance 2/(9k).
  const double v = 2.0 / (9.0 * dof);
  const double wh = dof * std::pow(1.0 - v + normal_quantile(probability) * std::sqrt(v), 3);
  // Small-x start from P(a, y) ~ y^a / Gamma(a + 1) where Wilson-Hilferty goes non-positive.
  double y = wh > 0.0 ? 0.5 * wh : std::exp((std::log(probability) + std::lgamma(a + 1.0)) / a);

  double lo = 0.0;
  double hi = std::numeric_limits<double>::infinity();
  for (int iteration = 0; iteration < 200; ++iteration) {
    const auto [p, q] = regularized_gamma(a, y);
    // f increases with y in both cases: f = P - p, or f = (1 - p) - Q.
    const double f = upper ? target - q : p - target;
    if (f == 0.0) break;
    if (f > 0.0) {
      hi = y;
    } else {
      lo = y;
    }
    const double density = std::exp(log_prefactor(a, y)) / y;  // dP/dy
    double next = y - f / density;
    if (!(next > lo && next < hi) || !std::isfinite(next)) {
      next = std::isinf(hi) ? 2.0 * y + 1.0 : 0.5 * (lo + hi);
    }
    const bool converged = std::fabs(next - y) <= 1e-14 * y;
    y = next;
    if (converged) break;
  }
  return 2.0 * y;
}

}  // namespace kwm
