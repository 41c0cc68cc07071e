// Golden tests of the exact diffuse filter and smoother against R KFAS 1.3.1 results shipped with
// statsmodels 0.13.5 (tsa/statespace/tests/results/results_exact_initial_*_R.csv; models as in
// test_exact_diffuse_filtering.py). KFAS omits -log(2 pi)/2 for each diffuse observation with
// f_inf > 0; we add it back, as statsmodels' CheckKFASMixin does.
#include <cmath>
#include <numbers>

#include <gtest/gtest.h>

#include "core/data/csv_reader.hpp"
#include "core/ssm/kalman_filter.hpp"
#include "core/ssm/smoother.hpp"
#include "tests/ssm/data_files.hpp"
#include "tests/ssm/table_column.hpp"

namespace kwm::ssm {
namespace {

const double kHalfLog2Pi = 0.5 * std::log(2.0 * std::numbers::pi);

// Values printed by R with 15 significant digits; our arithmetic differs in rounding order only.
constexpr double kRelTol = 1e-9;

void expect_close(double actual, double expected, const std::string& what) {
  EXPECT_NEAR(actual, expected, kRelTol * std::max(1.0, std::abs(expected))) << what;
}

LinearGaussianModel local_level(double sigma2_y, double sigma2_mu) {
  LinearGaussianModel m;
  m.F = Matrix::Identity(1, 1);
  m.H = Matrix::Identity(1, 1);
  m.Q = Matrix::Constant(1, 1, sigma2_mu);
  m.R = Matrix::Constant(1, 1, sigma2_y);
  m.init = InitialState::exact_diffuse(1);
  return m;
}

LinearGaussianModel local_linear_trend(double sigma2_y, double sigma2_mu, double sigma2_beta) {
  LinearGaussianModel m;
  m.F = (Matrix(2, 2) << 1, 1, 0, 1).finished();
  m.H = (Matrix(1, 2) << 1, 0).finished();
  m.Q = (Matrix(2, 2) << sigma2_mu, 0, 0, sigma2_beta).finished();
  m.R = Matrix::Constant(1, 1, sigma2_y);
  m.init = InitialState::exact_diffuse(2);
  return m;
}

TEST(GoldenExactDiffuse, LocalLevelMatchesKfas) {
  const auto kfas = data::read_csv(test::data_file("results_exact_initial_local_level_R.csv"));
  Matrix y = Matrix::Ones(10, 1);
  y(0, 0) = 10.2394;
  const LinearGaussianModel model = local_level(1.993, 8.253);
  model.validate();
  const FilterResult f = kalman_filter(model, y);
  const SmootherResult s = smoother(model, f);
  EXPECT_EQ(f.diffuse_steps, 1);
  EXPECT_DOUBLE_EQ(f.predicted_diffuse_covs[0](0, 0), 1.0);
  for (Index t = 0; t < 10; ++t) {
    const auto k = static_cast<std::size_t>(t);
    const std::string at = " at t=" + std::to_string(t);
    expect_close(f.predicted_means[k](0), test::column_value(kfas, "a_1", t),
                 "predicted mean" + at);
    expect_close(f.predicted_covs[k](0, 0), test::column_value(kfas, "sumP", t),
                 "predicted var" + at);
    expect_close(f.filtered_means[k](0), test::column_value(kfas, "att_1", t),
                 "filtered mean" + at);
    expect_close(s.means[k](0), test::column_value(kfas, "alphahat_1", t), "smoothed mean" + at);
    expect_close(s.covs[k](0, 0), test::column_value(kfas, "sumV", t), "smoothed var" + at);
  }
  expect_close(f.next_prediction.mean(0), test::column_value(kfas, "a_1", 10), "a_11");
  expect_close(f.next_prediction.cov(0, 0), test::column_value(kfas, "sumP", 10), "P_11");
  // One diffuse observation with f_inf > 0.
  expect_close(f.loglik, test::column_value(kfas, "llf", 0) - kHalfLog2Pi, "loglik");
}

void check_local_linear_trend(const std::string& file, const Matrix& y, Index diffuse_steps,
                              double kfas_llf_correction) {
  const auto kfas = data::read_csv(test::data_file(file));
  const LinearGaussianModel model = local_linear_trend(1.993, 8.253, 2.334);
  const FilterResult f = kalman_filter(model, y);
  const SmootherResult s = smoother(model, f);
  EXPECT_EQ(f.diffuse_steps, diffuse_steps);
  for (Index t = 0; t < y.rows(); ++t) {
    const auto k = static_cast<std::size_t>(t);
    const std::string at = " at t=" + std::to_string(t);
    for (Index i = 0; i < 2; ++i) {
      const std::string c = std::to_string(i + 1);
      expect_close(f.predicted_means[k](i), test::column_value(kfas, "a_" + c, t), "a_" + c + at);
      expect_close(f.filtered_means[k](i), test::column_value(kfas, "att_" + c, t),
                   "att_" + c + at);
      expect_close(s.means[k](i), test::column_value(kfas, "alphahat_" + c, t),
                   "alphahat_" + c + at);
    }
    // sumP / sumV: the sum of all entries of P_t / V_t.
    expect_close(f.predicted_covs[k].sum(), test::column_value(kfas, "sumP", t), "sumP" + at);
    expect_close(f.predicted_diffuse_covs[k].sum(),
                 t < diffuse_steps ? test::column_value(kfas, "sumPinf", t) : 0.0, "sumPinf" + at);
    expect_close(s.covs[k].sum(), test::column_value(kfas, "sumV", t), "sumV" + at);
  }
  expect_close(f.loglik, test::column_value(kfas, "llf", 0) + kfas_llf_correction, "loglik");
}

TEST(GoldenExactDiffuse, LocalLinearTrendMatchesKfas) {
  Matrix y = Matrix::Ones(10, 1);
  y(0, 0) = 10.2394;
  y(1, 0) = 4.2039;
  y(2, 0) = 6.123123;
  check_local_linear_trend("results_exact_initial_local_linear_trend_R.csv", y, 2,
                           -2 * kHalfLog2Pi);
}

TEST(GoldenExactDiffuse, LocalLinearTrendWithMissingMatchesKfas) {
  Matrix y = Matrix::Ones(10, 1);
  y(0, 0) = 10.2394;
  y(1, 0) = std::nan("");
  y(2, 0) = 6.123123;
  check_local_linear_trend("results_exact_initial_local_linear_trend_missing_R.csv", y, 3,
                           -2 * kHalfLog2Pi);
}

// DK 2012 section 2.10: the Nile local level at the maximum likelihood estimates
// sigma2_eps = 15099, sigma2_eta = 1469.1. The diffuse log-likelihood with the constant of the
// one diffuse observation (statsmodels) is -633.4646; without it (KFAS, and log p(y_2..y_n | y_1)
// with the DK chapter 2 recursions) it is -632.5456, the "-632.54" quoted for this model.
TEST(GoldenExactDiffuse, NileLocalLevelLoglik) {
  const auto nile = data::read_csv(test::data_file("nile.csv"), {"volume"});
  const LinearGaussianModel model = local_level(15099.0, 1469.1);
  const FilterResult f = kalman_filter(model, nile.values);
  EXPECT_EQ(f.n_obs, 100);
  EXPECT_EQ(f.n_diffuse_obs, 1);
  EXPECT_NEAR(f.loglik, -633.46456364888, 1e-8);
  EXPECT_NEAR(f.loglik + kHalfLog2Pi, -632.54562511567, 1e-8);
}

}  // namespace
}  // namespace kwm::ssm
