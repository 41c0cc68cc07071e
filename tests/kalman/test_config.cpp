// Config validation: every bad value throws std::invalid_argument naming key, range and value.
#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <string>

#include "core/kalman/config.hpp"
#include "core/kalman/decoupled_ekf.hpp"

namespace kwm {
namespace {

template <typename Config>
std::string error_of(const Config& config) {
  try {
    config.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(KalmanConfig, DefaultsAreValid) { EXPECT_NO_THROW(KalmanConfig{}.validate()); }

TEST(KalmanConfig, ForgettingMessageNamesKeyRangeAndValue) {
  KalmanConfig config;
  config.predict.forgetting = 1.5;
  EXPECT_EQ(error_of(config), "learner.forgetting must be in (0, 1]; got 1.5");
  config.predict.forgetting = 0.0;
  EXPECT_EQ(error_of(config), "learner.forgetting must be in (0, 1]; got 0");
}

TEST(KalmanConfig, EveryKeyIsChecked) {
  {
    PredictConfig c;
    c.process_noise = -1e-3;
    EXPECT_EQ(error_of(c), "learner.process_noise must be finite and >= 0; got -0.001");
  }
  {
    PredictConfig c;
    c.trace_cap = std::numeric_limits<double>::quiet_NaN();
    EXPECT_EQ(error_of(c), "learner.trace_cap must be finite and >= 0; got nan");
  }
  {
    JitterConfig c;
    c.initial_relative = 0.0;
    EXPECT_EQ(error_of(c), "learner.jitter.initial_relative must be finite and > 0; got 0");
  }
  {
    JitterConfig c;
    c.growth = 1.0;
    EXPECT_EQ(error_of(c), "learner.jitter.growth must be finite and > 1; got 1");
  }
  {
    JitterConfig c;
    c.max_retries = -2;
    EXPECT_EQ(error_of(c), "learner.jitter.max_retries must be >= 0; got -2");
  }
  {
    GatingConfig c;
    c.probability = 1.0;
    EXPECT_EQ(error_of(c), "learner.gating.probability must be in (0, 1); got 1");
  }
  {
    NoiseConfig c;
    c.variance = -2.0;
    EXPECT_EQ(error_of(c), "learner.noise.variance must be finite and > 0; got -2");
  }
  {
    NoiseConfig c;
    c.ema = 1.0;
    EXPECT_EQ(error_of(c), "learner.noise.ema must be in (0, 1); got 1");
  }
  {
    NoiseConfig c;
    c.floor = 0.0;
    EXPECT_EQ(error_of(c), "learner.noise.floor must be finite and > 0; got 0");
  }
  {
    SafeguardConfig c;
    c.eigen_floor = 2.0;
    c.eigen_ceiling = 1.0;
    EXPECT_EQ(error_of(c), "learner.eigen_ceiling must be > learner.eigen_floor (2); got 1");
  }
  {
    SafeguardConfig c;
    c.clamp_every = -1;
    EXPECT_EQ(error_of(c), "learner.clamp_every must be >= 0; got -1");
  }
}

TEST(KalmanConfig, NestedConfigsValidateThroughTheTop) {
  KalmanConfig config;
  config.update.gating.probability = -0.5;
  EXPECT_EQ(error_of(config), "learner.gating.probability must be in (0, 1); got -0.5");
  config = KalmanConfig{};
  config.noise.ema = 2.0;
  EXPECT_EQ(error_of(config), "learner.noise.ema must be in (0, 1); got 2");
}

TEST(KalmanConfig, FiltersRefuseInvalidConfigs) {
  auto backend = make_backend<double>("cpu");
  UpdateConfig update;
  update.jitter.growth = 0.5;
  EXPECT_THROW(DecoupledEkf<double>(*backend, update), std::invalid_argument);
  NoiseConfig noise;
  noise.floor = -1.0;
  EXPECT_THROW(ObservationNoise<double>{noise}, std::invalid_argument);
}

}  // namespace
}  // namespace kwm
