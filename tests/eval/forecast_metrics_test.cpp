// Forecast metrics against hand-computed values, NaN skipping, and the coverage of a Gaussian
// sample of 10^5 values within 3 standard errors of 0.9.
#include "core/eval/forecast_metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numbers>
#include <random>

namespace kwm::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Prediction make_prediction(std::initializer_list<double> mean,
                           std::initializer_list<double> variance) {
  Prediction p;
  p.mean = Eigen::Map<const Eigen::VectorXd>(mean.begin(), static_cast<Eigen::Index>(mean.size()));
  p.variance = Eigen::Map<const Eigen::VectorXd>(variance.begin(),
                                                 static_cast<Eigen::Index>(variance.size()));
  return p;
}

Eigen::VectorXd vec(std::initializer_list<double> values) {
  return Eigen::Map<const Eigen::VectorXd>(values.begin(),
                                           static_cast<Eigen::Index>(values.size()));
}

double gaussian_nll(double y, double mean, double var) {
  return 0.5 * std::log(2 * std::numbers::pi * var) + 0.5 * (y - mean) * (y - mean) / var;
}

TEST(ForecastMetrics, HandComputedWithMissingValues) {
  ForecastMetricsAccumulator acc(2);
  // Step 1: both observed. Channel 0: e = 1, var 1 (inside 1.645). Channel 1: e = -2, var 1.
  acc.add(make_prediction({0.0, 1.0}, {1.0, 1.0}), vec({1.0, -1.0}));
  // Step 2: channel 0 missing; channel 1: e = 0.5, var 4.
  acc.add(make_prediction({5.0, 0.0}, {1.0, 4.0}), vec({kNaN, 0.5}));
  // Step 3: channel 0: e = -3, var 9 (|e| = 3 <= 1.645 * 3); channel 1 missing.
  acc.add(make_prediction({3.0, 0.0}, {9.0, 1.0}), vec({0.0, kNaN}));
  const ForecastMetrics m = acc.result();

  ASSERT_EQ(m.per_channel.size(), 2u);
  const ChannelMetrics& c0 = m.per_channel[0];
  const ChannelMetrics& c1 = m.per_channel[1];
  EXPECT_EQ(c0.count, 2);
  EXPECT_EQ(c1.count, 2);
  EXPECT_EQ(m.overall.count, 4);
  // Exact up to rounding: tolerance 1e-14 relative.
  EXPECT_NEAR(c0.mse, (1.0 + 9.0) / 2, 1e-14);
  EXPECT_NEAR(c0.mae, (1.0 + 3.0) / 2, 1e-14);
  EXPECT_NEAR(c0.nll, (gaussian_nll(1, 0, 1) + gaussian_nll(0, 3, 9)) / 2, 1e-14);
  EXPECT_DOUBLE_EQ(c0.coverage90, 1.0);
  EXPECT_NEAR(c1.mse, (4.0 + 0.25) / 2, 1e-14);
  EXPECT_NEAR(c1.mae, (2.0 + 0.5) / 2, 1e-14);
  EXPECT_NEAR(c1.nll, (gaussian_nll(-1, 1, 1) + gaussian_nll(0.5, 0, 4)) / 2, 1e-14);
  EXPECT_DOUBLE_EQ(c1.coverage90, 0.5);  // |e| = 2 > 1.645 is outside
  // Pooled over the four scored scalars, not the mean of channel means.
  EXPECT_NEAR(m.overall.mse, (1.0 + 9.0 + 4.0 + 0.25) / 4, 1e-14);
  EXPECT_NEAR(m.overall.mae, (1.0 + 3.0 + 2.0 + 0.5) / 4, 1e-14);
  EXPECT_NEAR(m.overall.nll, (2 * c0.nll + 2 * c1.nll) / 4, 1e-14);
  EXPECT_DOUBLE_EQ(m.overall.coverage90, 0.75);
}

TEST(ForecastMetrics, NllIncludesTheNormalisingConstant) {
  ForecastMetricsAccumulator acc(1);
  acc.add(make_prediction({0.0}, {1.0}), vec({0.0}));
  EXPECT_NEAR(acc.result().overall.nll, 0.5 * std::log(2 * std::numbers::pi), 1e-15);
}

TEST(ForecastMetrics, CoverageBoundaryIsTheCentral90Quantile) {
  ForecastMetricsAccumulator acc(1);
  acc.add(make_prediction({0.0}, {1.0}), vec({1.6448}));  // inside
  acc.add(make_prediction({0.0}, {1.0}), vec({1.6449}));  // outside
  EXPECT_DOUBLE_EQ(acc.result().overall.coverage90, 0.5);
}

TEST(ForecastMetrics, NanMeanIsCountedAsUnpredictedNotScored) {
  ForecastMetricsAccumulator acc(1);
  acc.add(make_prediction({kNaN}, {1.0}), vec({2.0}));
  acc.add(make_prediction({kNaN}, {1.0}), vec({kNaN}));  // missing y: not even unpredicted
  const ForecastMetrics m = acc.result();
  EXPECT_EQ(m.overall.count, 0);
  EXPECT_EQ(m.overall.unpredicted, 1);
  EXPECT_TRUE(std::isnan(m.overall.mse));
  const nlohmann::json j = m;
  EXPECT_TRUE(j["overall"]["mse"].is_null());
  EXPECT_EQ(j["overall"]["unpredicted"].get<long long>(), 1);
}

TEST(ForecastMetrics, RejectsBadVarianceAndSizes) {
  ForecastMetricsAccumulator acc(1);
  EXPECT_THROW(acc.add(make_prediction({0.0}, {0.0}), vec({1.0})), std::invalid_argument);
  EXPECT_THROW(acc.add(make_prediction({0.0}, {kNaN}), vec({1.0})), std::invalid_argument);
  EXPECT_THROW(acc.add(make_prediction({0.0, 1.0}, {1.0, 1.0}), vec({1.0})), std::invalid_argument);
  EXPECT_THROW(ForecastMetricsAccumulator(0), std::invalid_argument);
}

TEST(ForecastMetrics, JsonHasEveryField) {
  ForecastMetricsAccumulator acc(2);
  acc.add(make_prediction({0.0, 0.0}, {1.0, 1.0}), vec({0.5, -0.5}));
  const nlohmann::json j = acc.result();
  ASSERT_EQ(j["per_channel"].size(), 2u);
  for (const char* key : {"count", "unpredicted", "mse", "mae", "nll", "coverage90"}) {
    EXPECT_TRUE(j["overall"].contains(key)) << key;
  }
  EXPECT_DOUBLE_EQ(j["overall"]["mse"].get<double>(), 0.25);
}

// A calibrated Gaussian forecast covers 90% of 10^5 draws within 3 standard errors
// (SE = sqrt(0.9 * 0.1 / n) = 9.5e-4), and its mean NLL is 0.5 log(2 pi s^2) + 0.5 within 3 SE
// (the NLL's per-draw standard deviation is sqrt(0.5)).
TEST(ForecastMetrics, CoverageOfAKnownGaussianSample) {
  const int n = 100000;
  const double mu = 3.0, sigma = 2.0;
  std::mt19937_64 rng(20240601);
  std::normal_distribution<double> normal(mu, sigma);
  ForecastMetricsAccumulator acc(1);
  const Prediction p = make_prediction({mu}, {sigma * sigma});
  for (int i = 0; i < n; ++i) acc.add(p, vec({normal(rng)}));
  const ChannelMetrics m = acc.result().overall;
  EXPECT_EQ(m.count, n);
  const double se_coverage = std::sqrt(0.9 * 0.1 / n);
  EXPECT_NEAR(m.coverage90, 0.9, 3 * se_coverage);
  const double se_nll = std::sqrt(0.5 / n);
  EXPECT_NEAR(m.nll, 0.5 * std::log(2 * std::numbers::pi * sigma * sigma) + 0.5, 3 * se_nll);
  // MSE of N(0, s^2) errors: mean s^2, SE s^2 sqrt(2 / n).
  EXPECT_NEAR(m.mse, sigma * sigma, 3 * sigma * sigma * std::sqrt(2.0 / n));
}

}  // namespace
}  // namespace kwm::eval
