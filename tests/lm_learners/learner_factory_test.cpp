// make_language_learner: dispatch on learner.type, and errors that name the bad type or key.
#include <gtest/gtest.h>

#include <string>

#include "core/lm/learners/learner_factory.hpp"
#include "tests/lm_baselines/lm_test_support.hpp"

namespace kwm::lm {
namespace {

std::string error_of(const std::string& yaml) {
  try {
    make_language_learner(YAML::Load(yaml), testing::tiny_model(), 1, {});
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(LearnerFactory, BuildsTheKalmanLearnersByType) {
  const auto head = make_language_learner(YAML::Load("{type: rls-head, delta: 0.05}"),
                                          testing::tiny_model(), 1, {});
  EXPECT_EQ(head->name(), "rls-head");
  EXPECT_EQ(head->derivative_label(), "reverse-free (linear-in-parameters head)");
  const auto linearized = make_language_learner(
      YAML::Load("{type: kwm-linearized, forgetting: 0.99, noise: {mode: adaptive, floor: 1e-6}}"),
      testing::tiny_model(), 1, {});
  EXPECT_EQ(linearized->name(), "kwm-linearized");
  EXPECT_EQ(linearized->derivative_label(), "linearized (transposed Jacobians)");
  const auto types = language_learner_types();
  EXPECT_NE(std::find(types.begin(), types.end(), "rls-head"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "kwm-linearized"), types.end());
}

TEST(LearnerFactory, ErrorsNameTheTypeOrKey) {
  EXPECT_NE(error_of("{type: kalman-magic}").find("kalman-magic"), std::string::npos);
  EXPECT_NE(error_of("{delta: 1}").find("learner.type"), std::string::npos);
  EXPECT_NE(error_of("{type: rls-head, learning_rate: 0.1}").find("learner.learning_rate"),
            std::string::npos);
  EXPECT_NE(error_of("{type: rls-head, delta: 0}").find("learner.delta"), std::string::npos);
  EXPECT_NE(error_of("{type: kwm-linearized, noise: {mode: clever}}").find("learner.noise.mode"),
            std::string::npos);
  EXPECT_NE(error_of("{type: kwm-linearized, noise: {sigma: 1}}").find("learner.noise.sigma"),
            std::string::npos);
  EXPECT_NE(error_of("{type: kwm-linearized, forgetting: 1.5}").find("learner.forgetting"),
            std::string::npos);
  EXPECT_NE(error_of("{type: rls-head, jitter: {growth: 0.5}}").find("learner.jitter"),
            std::string::npos);
}

}  // namespace
}  // namespace kwm::lm
