// Central differences on one scalar entry, and the agreement rule every derivative test uses.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

namespace kwm::lm::testing {

// The step h and the agreement tolerance of every derivative test (h = 1e-5 keeps the truncation
// error h^2 f''' and the rounding error eps |f| / h both small).
inline constexpr double kStep = 1e-5;
inline constexpr double kTolerance = 1e-7;

// (f(x + h) - f(x - h)) / 2h with x the entry `value`, restored afterwards.
template <typename F>
double central_difference(F&& f, double& value, double h) {
  const double saved = value;
  value = saved + h;
  const double plus = f();
  value = saved - h;
  const double minus = f();
  value = saved;
  return (plus - minus) / (2.0 * h);
}

// |numeric - analytic| <= tolerance * max(1, |analytic|): relative for entries above 1,
// absolute below (truncation error h^2 f''' and rounding eps |f| / h are both absolute).
inline ::testing::AssertionResult agrees(double numeric, double analytic, double tolerance,
                                         const std::string& what) {
  const double error = std::abs(numeric - analytic);
  if (error <= tolerance * std::max(1.0, std::abs(analytic))) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": finite difference " << numeric << " vs transposed Jacobian " << analytic
         << " (error " << error << ", tolerance " << tolerance << ")";
}

}  // namespace kwm::lm::testing
