// Chi-square quantile against closed-form CDFs (even dof: Poisson sum; odd dof: erf series) and
// tabulated quantiles. Tolerances: the quantile's CDF matches p to 1e-13 absolute and the closed
// forms to 1e-12 relative; table values are printed to 3 decimals, so 1e-3 absolute there.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <stdexcept>

#include "core/kalman/chi_square.hpp"

namespace kwm {
namespace {

// Pr[X <= x], X ~ chi-square(2k): 1 - e^{-x/2} sum_{i<k} (x/2)^i / i!
double even_dof_cdf(double x, int k) {
  double term = 1.0;
  double sum = 1.0;
  for (int i = 1; i < k; ++i) {
    term *= 0.5 * x / i;
    sum += term;
  }
  return 1.0 - std::exp(-0.5 * x) * sum;
}

// Pr[X <= x], X ~ chi-square(2k + 1): erf(sqrt(x/2)) - sqrt(2x/pi) e^{-x/2} sum_{j=1}^{k}
// x^{j-1} / (1 * 3 * ... * (2j - 1)).
double odd_dof_cdf(double x, int k) {
  double term = 1.0;
  double sum = 0.0;
  for (int j = 1; j <= k; ++j) {
    if (j > 1) term *= x / (2 * j - 1);
    sum += term;
  }
  return std::erf(std::sqrt(0.5 * x)) -
         std::sqrt(2.0 * x / std::numbers::pi) * std::exp(-0.5 * x) * sum;
}

TEST(ChiSquare, TwoDegreesOfFreedomIsExponential) {
  for (const double p : {1e-9, 1e-3, 0.1, 0.5, 0.9, 0.95, 0.999, 1.0 - 1e-9}) {
    const double exact = -2.0 * std::log1p(-p);
    EXPECT_NEAR(chi_square_quantile(p, 2.0), exact, 1e-12 * exact) << "p = " << p;
  }
}

TEST(ChiSquare, OneDegreeOfFreedomMatchesErf) {
  for (const double p : {1e-6, 0.01, 0.3, 0.5, 0.95, 0.99, 0.999999}) {
    const double q = chi_square_quantile(p, 1.0);
    EXPECT_NEAR(std::erf(std::sqrt(0.5 * q)), p, 1e-13) << "p = " << p;
    // Upper tail without cancellation: erfc against 1 - p.
    EXPECT_NEAR(std::erfc(std::sqrt(0.5 * q)) / (1.0 - p), 1.0, 1e-9) << "p = " << p;
  }
}

TEST(ChiSquare, ClosedFormCdfsForEvenAndOddDof) {
  for (const int dof : {3, 4, 5, 7, 10, 21, 40}) {
    for (const double p : {0.001, 0.05, 0.5, 0.95, 0.999}) {
      const double q = chi_square_quantile(p, dof);
      const double cdf = dof % 2 == 0 ? even_dof_cdf(q, dof / 2) : odd_dof_cdf(q, dof / 2);
      EXPECT_NEAR(cdf, p, 1e-12) << "dof " << dof << " p " << p;
      EXPECT_NEAR(chi_square_cdf(q, dof), p, 1e-13) << "dof " << dof << " p " << p;
    }
  }
}

TEST(ChiSquare, TabulatedQuantiles) {
  // Standard chi-square table (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.4), 3 decimals.
  EXPECT_NEAR(chi_square_quantile(0.95, 1), 3.841, 1e-3);
  EXPECT_NEAR(chi_square_quantile(0.95, 2), 5.991, 1e-3);
  EXPECT_NEAR(chi_square_quantile(0.95, 3), 7.815, 1e-3);
  EXPECT_NEAR(chi_square_quantile(0.95, 10), 18.307, 1e-3);
  EXPECT_NEAR(chi_square_quantile(0.99, 5), 15.086, 1e-3);
  EXPECT_NEAR(chi_square_quantile(0.999, 3), 16.266, 1e-3);
  EXPECT_NEAR(chi_square_quantile(0.95, 100), 124.342, 1e-3);
  EXPECT_NEAR(chi_square_quantile(0.05, 30), 18.493, 1e-3);
}

TEST(ChiSquare, LargeAndFractionalDof) {
  // The CDF's prefactor exp(a ln x - x - lgamma(a)) carries ~a * 1e-16 relative rounding, so the
  // round trip is checked to 1e-12 up to dof 250 and to 1e-10 at dof 5000.
  for (const double dof : {0.5, 1.5, 250.0, 5000.0}) {
    for (const double p : {0.01, 0.5, 0.99}) {
      EXPECT_NEAR(chi_square_cdf(chi_square_quantile(p, dof), dof), p, dof > 1000 ? 1e-10 : 1e-12)
          << "dof " << dof << " p " << p;
    }
  }
}

TEST(ChiSquare, NormalQuantile) {
  for (const double p : {1e-10, 0.01, 0.3, 0.5, 0.8, 0.975, 1.0 - 1e-10}) {
    const double z = normal_quantile(p);
    EXPECT_NEAR(0.5 * std::erfc(-z / std::sqrt(2.0)), p, 1e-15 + 1e-12 * p) << "p = " << p;
  }
}

TEST(ChiSquare, RejectsOutsideTheDomain) {
  EXPECT_THROW(chi_square_quantile(0.0, 1.0), std::invalid_argument);
  EXPECT_THROW(chi_square_quantile(1.0, 1.0), std::invalid_argument);
  EXPECT_THROW(chi_square_quantile(0.5, 0.0), std::invalid_argument);
  EXPECT_THROW(regularized_gamma_p(-1.0, 1.0), std::invalid_argument);
  EXPECT_THROW(normal_quantile(1.5), std::invalid_argument);
}

}  // namespace
}  // namespace kwm
