// Normalisation: NaN-aware statistics, apply/invert round trips, and a model that normalises
// raw data the same way as an identity-normalised model fed normalised data.
#include <gtest/gtest.h>

#include <limits>

#include "core/models/diagonal_stack.hpp"
#include "core/models/normalization.hpp"
#include "tests/models/model_test_support.hpp"

namespace kwm {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(Normalization, FitSkipsMissingValues) {
  Eigen::MatrixXd samples(5, 3);
  samples << 1.0, 10.0, 7.0,  //
      2.0, kNaN, 7.0,         //
      3.0, 30.0, 7.0,         //
      kNaN, 20.0, 7.0,        //
      6.0, kNaN, 7.0;
  const ChannelScaling s = ChannelScaling::fit(samples);
  // Channel 0: {1, 2, 3, 6}, mean 3, population variance (4 + 1 + 0 + 9) / 4 = 3.5.
  EXPECT_DOUBLE_EQ(s.mean(0), 3.0);
  EXPECT_DOUBLE_EQ(s.scale(0), std::sqrt(3.5));
  // Channel 1: {10, 30, 20}, mean 20, variance 200 / 3.
  EXPECT_DOUBLE_EQ(s.mean(1), 20.0);
  EXPECT_DOUBLE_EQ(s.scale(1), std::sqrt(200.0 / 3.0));
  // Constant channel: centred, scale 1.
  EXPECT_DOUBLE_EQ(s.mean(2), 7.0);
  EXPECT_DOUBLE_EQ(s.scale(2), 1.0);
}

TEST(Normalization, ApplyAndInvertRoundTrip) {
  const test::Sequence s = test::random_sequence(50, 3, 3, 1);
  Eigen::MatrixXd samples(50, 3);
  for (Index t = 0; t < 50; ++t)
    samples.row(t) = 1e3 * s.u[static_cast<std::size_t>(t)].transpose().array() + 5e3;
  const ChannelScaling scaling = ChannelScaling::fit(samples);
  for (Index t = 0; t < 50; ++t) {
    const Eigen::VectorXd x = samples.row(t).transpose();
    const Eigen::VectorXd z = scaling.apply(x);
    // Two roundings each way on O(5e3) values: 1e-12 relative.
    EXPECT_LT(((scaling.invert(z) - x).array().abs() / x.array().abs()).maxCoeff(), 1e-12);
  }
  // The fitted data are standardised: mean 0, population variance 1, to rounding.
  Eigen::MatrixXd z(50, 3);
  for (Index t = 0; t < 50; ++t) z.row(t) = scaling.apply(samples.row(t).transpose()).transpose();
  EXPECT_LT(z.colwise().mean().norm(), 1e-12);
  EXPECT_LT((z.array().square().colwise().mean() - 1.0).abs().maxCoeff(), 1e-12);
  EXPECT_TRUE(std::isnan(scaling.apply(Eigen::Vector3d(kNaN, 1.0, 2.0))(0)));
}

TEST(Normalization, ModelNormalisesRawDataAndInvertsPredictions) {
  DiagonalStackConfig c;
  c.n_in = 2;
  c.n_out = 2;
  c.output_lags = 1;
  c.width = 4;
  c.states = 3;
  DiagonalStack raw_model(c), unit_model(c);
  unit_model.set_theta(raw_model.theta());

  const test::Sequence unit = test::random_sequence(15, 2, 2, 3, {{4, 1}});
  Normalization n;
  n.input = {Eigen::Vector2d(10.0, -3.0), Eigen::Vector2d(2.0, 0.5)};
  n.output = {Eigen::Vector2d(100.0, 0.25), Eigen::Vector2d(40.0, 1e-3)};
  raw_model.set_normalization(n);
  test::Sequence raw = unit;
  for (std::size_t t = 0; t < raw.u.size(); ++t) {
    raw.u[t] = n.input.invert(unit.u[t]);
    raw.y[t] = n.output.invert(unit.y[t]);
  }
  raw_model.reset();
  unit_model.reset();
  for (std::size_t t = 0; t < raw.u.size(); ++t) {
    const LinearizedPrediction& a = raw_model.step(raw.u[t]);
    const LinearizedPrediction& b = unit_model.step(unit.u[t]);
    // Normalising the inverted data repeats the input to rounding: 1e-12.
    EXPECT_LT(test::mixed_error(a.yhat, b.yhat), 1e-12);
    EXPECT_LT(test::mixed_error(a.dense_jacobian(), b.dense_jacobian()), 1e-12);
    EXPECT_LT(test::mixed_error(raw_model.prediction_in_data_units(a), n.output.invert(b.yhat)),
              1e-12);
    const Eigen::VectorXd target = raw_model.normalized_observation(raw.y[t]);
    for (Index i = 0; i < 2; ++i) {
      if (std::isnan(unit.y[t](i))) {
        EXPECT_TRUE(std::isnan(target(i)));
      } else {
        EXPECT_NEAR(target(i), unit.y[t](i), 1e-12);
      }
    }
    raw_model.advance(raw.y[t]);
    unit_model.advance(unit.y[t]);
  }
}

TEST(Normalization, WrongSizesAndScalesAreRejected) {
  DiagonalStackConfig c;
  c.n_in = 1;
  DiagonalStack model(c);
  EXPECT_THROW(model.set_normalization(Normalization::identity(2, 1)), std::invalid_argument);
  Normalization n = Normalization::identity(1, 1);
  n.output.scale(0) = 0.0;
  EXPECT_THROW(model.set_normalization(n), std::invalid_argument);
}

}  // namespace
}  // namespace kwm
