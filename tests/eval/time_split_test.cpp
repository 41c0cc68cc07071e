// Time split boundaries (contiguous, in order, rounding) and train-only channel statistics.
#include "core/eval/time_split.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace kwm::eval {
namespace {

constexpr double kNotANumber = std::numeric_limits<double>::quiet_NaN();

TEST(TimeSplit, DefaultFractionsOnAThousandSteps) {
  const TimeSplit s = split_by_time(1000);
  EXPECT_EQ(s.train.begin, 0);
  EXPECT_EQ(s.train.end, 700);
  EXPECT_EQ(s.validation.begin, 700);
  EXPECT_EQ(s.validation.end, 800);
  EXPECT_EQ(s.test.begin, 800);
  EXPECT_EQ(s.test.end, 1000);
}

TEST(TimeSplit, BoundariesRoundToTheNearestStep) {
  // 7 * 0.7 = 4.9 -> 5, 7 * 0.8 = 5.6 -> 6.
  const TimeSplit s = split_by_time(7, {0.7, 0.1, 0.2});
  EXPECT_EQ(s.train.size(), 5);
  EXPECT_EQ(s.validation.size(), 1);
  EXPECT_EQ(s.test.size(), 1);
}

TEST(TimeSplit, PartsAreContiguousAndCoverTheSeries) {
  for (Eigen::Index steps : {1, 2, 3, 10, 101, 9999}) {
    const TimeSplit s = split_by_time(steps, {0.6, 0.25, 0.15});
    EXPECT_EQ(s.train.begin, 0);
    EXPECT_EQ(s.validation.begin, s.train.end);
    EXPECT_EQ(s.test.begin, s.validation.end);
    EXPECT_EQ(s.test.end, steps);
    EXPECT_GE(s.validation.size(), 0);
    EXPECT_GE(s.test.size(), 0);
  }
}

TEST(TimeSplit, NoValidationOrNoTest) {
  const TimeSplit a = split_by_time(10, {0.8, 0.0, 0.2});
  EXPECT_EQ(a.validation.size(), 0);
  EXPECT_EQ(a.test.size(), 2);
  const TimeSplit b = split_by_time(10, {0.9, 0.1, 0.0});
  EXPECT_EQ(b.test.size(), 0);
  EXPECT_EQ(b.validation.end, 10);
}

TEST(TimeSplit, RejectsBadFractions) {
  EXPECT_THROW(split_by_time(10, {0.7, 0.1, 0.1}), std::invalid_argument);   // sum 0.9
  EXPECT_THROW(split_by_time(10, {1.2, -0.2, 0.0}), std::invalid_argument);  // outside [0, 1]
  EXPECT_THROW(split_by_time(10, {kNotANumber, 0.5, 0.5}), std::invalid_argument);
  EXPECT_THROW(split_by_time(10, {0.0, 0.5, 0.5}), std::invalid_argument);  // empty train
}

TEST(ChannelStatistics, SkipsNanAndUsesThePopulationStd) {
  Eigen::MatrixXd values(4, 2);
  values << 1, 10,               //
      kNotANumber, kNotANumber,  //
      3, 10,                     //
      5, kNotANumber;
  const ChannelStatistics s = channel_statistics(values, {0, 4});
  EXPECT_EQ(s.count(0), 3);
  EXPECT_EQ(s.count(1), 2);
  EXPECT_DOUBLE_EQ(s.mean(0), 3.0);
  EXPECT_NEAR(s.std(0), std::sqrt(8.0 / 3.0), 1e-15);
  EXPECT_DOUBLE_EQ(s.mean(1), 10.0);
  EXPECT_DOUBLE_EQ(s.std(1), 0.0);
}

TEST(ChannelStatistics, ChannelWithNoValueIsNan) {
  Eigen::MatrixXd values(2, 1);
  values << kNotANumber, kNotANumber;
  const ChannelStatistics s = channel_statistics(values, {0, 2});
  EXPECT_EQ(s.count(0), 0);
  EXPECT_TRUE(std::isnan(s.mean(0)));
  EXPECT_TRUE(std::isnan(s.std(0)));
}

TEST(ChannelStatistics, TrainingStatisticsIgnoreValidationAndTest) {
  Eigen::MatrixXd values(10, 1);
  values << 1, 2, 3, 4, 5, 6, 7, 1e6, 1e6, 1e6;  // huge values only after the training part
  const TimeSplit split = split_by_time(10, {0.7, 0.1, 0.2});
  const ChannelStatistics s = training_statistics(values, split);
  EXPECT_EQ(s.count(0), 7);
  EXPECT_DOUBLE_EQ(s.mean(0), 4.0);
  EXPECT_NEAR(s.std(0), 2.0, 1e-15);  // population std of 1..7
}

TEST(ChannelStatistics, StableFarFromZero) {
  // Values 1e9 + {-1, 0, 1}: the two-pass formula keeps the std exact.
  Eigen::MatrixXd values(3, 1);
  values << 1e9 - 1, 1e9, 1e9 + 1;
  EXPECT_NEAR(channel_statistics(values, {0, 3}).std(0), std::sqrt(2.0 / 3.0), 1e-9);
}

TEST(ChannelStatistics, RejectsRangesOutsideTheTable) {
  const Eigen::MatrixXd values = Eigen::MatrixXd::Zero(3, 1);
  EXPECT_THROW(channel_statistics(values, {0, 4}), std::invalid_argument);
  EXPECT_THROW(channel_statistics(values, {2, 1}), std::invalid_argument);
}

}  // namespace
}  // namespace kwm::eval
