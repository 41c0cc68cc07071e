// Golden test of the multivariate filter and RTS smoother with partially missing observations
// against R KFAS results shipped with statsmodels 0.13.5 (results_smoothing_R.csv; model as in
// test_smoothing.py TestMultivariateMissing): y = first differences of macrodata realgdp,
// realcons, realinv; F = H = Q = R = I_3; large-variance initialisation P0 = 1e6 I.
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "core/data/csv_reader.hpp"
#include "core/ssm/kalman_filter.hpp"
#include "core/ssm/smoother.hpp"
#include "tests/ssm/data_files.hpp"
#include "tests/ssm/table_column.hpp"

namespace kwm::ssm {
namespace {

Matrix macro_differences_with_gaps() {
  const auto macro =
      data::read_csv(test::data_file("macrodata.csv"), {"realgdp", "realcons", "realinv"});
  const Index T = macro.values.rows() - 1;
  Matrix y = macro.values.bottomRows(T) - macro.values.topRows(T);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // statsmodels: obs.iloc[0:50, 0], [19:70, 1], [39:90, 2], [119:130, 0] and [119:130, 2] = NaN
  y.block(0, 0, 50, 1).setConstant(nan);
  y.block(19, 1, 51, 1).setConstant(nan);
  y.block(39, 2, 51, 1).setConstant(nan);
  y.block(119, 0, 11, 1).setConstant(nan);
  y.block(119, 2, 11, 1).setConstant(nan);
  return y;
}

TEST(GoldenSmoothing, MacrodataMissingMatchesKfas) {
  const auto kfas = data::read_csv(test::data_file("results_smoothing_R.csv"));
  const Matrix y = macro_differences_with_gaps();
  ASSERT_EQ(y.rows(), kfas.values.rows());

  LinearGaussianModel model;
  model.F = model.H = model.Q = model.R = Matrix::Identity(3, 3);
  model.init = InitialState::large_variance(3, 1e6);
  model.validate();
  const FilterResult f = kalman_filter(model, y);
  const SmootherResult s = smoother(model, f);
  const SmootherResult bf = backward_smoother(model, f);

  // KFAS prints 15 significant digits, but its univariate filter and ours round differently
  // while the 1e6 prior variance washes out; the agreement reached is 1e-9 relative.
  const double tol = 1e-9;
  auto near = [tol](double a, double b) {
    return std::abs(a - b) <= tol * std::max(1.0, std::abs(b));
  };
  const auto T = y.rows();
  for (Index t = 0; t < T; ++t) {
    const auto k = static_cast<std::size_t>(t);
    // a1..a3 and detP are the predictions for t + 1.
    const Vector& a_next = t + 1 < T ? f.predicted_means[k + 1] : f.next_prediction.mean;
    const Matrix& P_next = t + 1 < T ? f.predicted_covs[k + 1] : f.next_prediction.cov;
    for (Index i = 0; i < 3; ++i) {
      const std::string c = std::to_string(i + 1);
      EXPECT_PRED2(near, a_next(i), test::column_value(kfas, "a" + c, t)) << "a" << c << " t=" << t;
      EXPECT_PRED2(near, s.means[k](i), test::column_value(kfas, "alphahat" + c, t))
          << "alphahat" << c << " t=" << t;
      EXPECT_PRED2(near, bf.means[k](i), s.means[k](i)) << "backward vs RTS, t=" << t;
    }
    EXPECT_PRED2(near, P_next.determinant(), test::column_value(kfas, "detP", t)) << "detP t=" << t;
    EXPECT_PRED2(near, s.covs[k].determinant(), test::column_value(kfas, "detV", t))
        << "detV t=" << t;
  }
  // statsmodels test_smoothing.py: assert_allclose(llf, -205310.9767) (rtol 1e-7).
  EXPECT_NEAR(f.loglik, -205310.9767, 1e-7 * 205310.9767);
  EXPECT_EQ(f.n_missing, 50 + 51 + 51 + 11 + 11);
  EXPECT_EQ(f.n_obs + f.n_missing, 3 * T);
}

}  // namespace
}  // namespace kwm::ssm
