// Generation: greedy is the argmax of the model's last column and deterministic, sampling is
// reproducible for a seed, and a sequence longer than the context slides its window.
#include <gtest/gtest.h>

#include "core/lm/generate.hpp"
#include "tests/lm/lm_test_support.hpp"

namespace kwm::lm {
namespace {

class Generate : public ::testing::Test {
 protected:
  GptParameters<double> params = testing::random_parameters(testing::small_config(true), 41);
  std::vector<std::int32_t> prompt = {3, 1, 4};
};

TEST_F(Generate, GreedyIsTheArgmaxAndDeterministic) {
  const auto out = generate(params, prompt, 6, 0.0, 1);
  ASSERT_EQ(out.size(), prompt.size() + 6);
  EXPECT_EQ(std::vector<std::int32_t>(out.begin(), out.begin() + 3), prompt);
  EXPECT_EQ(out, generate(params, prompt, 6, 0.0, 999));  // the seed plays no part
  TokenBatch batch{1, 3, prompt, {}};
  const Matrix<double> logits = forward(params, batch, nullptr);
  Eigen::Index best = 0;
  logits.col(2).maxCoeff(&best);
  EXPECT_EQ(out[3], best);
}

TEST_F(Generate, SamplingIsReproducibleForASeed) {
  const auto a = generate(params, prompt, 20, 1.5, 7);
  EXPECT_EQ(a, generate(params, prompt, 20, 1.5, 7));
  EXPECT_NE(a, generate(params, prompt, 20, 1.5, 8));
  // A near-zero temperature concentrates all mass on the argmax.
  EXPECT_EQ(generate(params, prompt, 5, 1e-6, 7), generate(params, prompt, 5, 0.0, 7));
}

TEST_F(Generate, WindowSlidesPastTheContext) {
  // context 8: a 12-token prompt is seen as its last 8 tokens, and so is every longer sequence.
  const std::vector<std::int32_t> long_prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  const auto out = generate(params, long_prompt, 5, 0.0, 1);
  ASSERT_EQ(out.size(), 17u);
  const std::vector<std::int32_t> window(long_prompt.end() - 8, long_prompt.end());
  const auto from_window = generate(params, window, 5, 0.0, 1);
  EXPECT_TRUE(std::equal(out.begin() + 12, out.end(), from_window.begin() + 8));
}

TEST_F(Generate, RejectsBadArguments) {
  EXPECT_THROW(generate(params, {}, 3, 0.0, 1), std::invalid_argument);
  EXPECT_THROW(generate(params, {1, 23}, 3, 0.0, 1), std::invalid_argument);
  EXPECT_THROW(generate(params, {1, 23}, 0, 0.0, 1), std::invalid_argument);
  EXPECT_THROW(generate(params, prompt, -1, 0.0, 1), std::invalid_argument);
  EXPECT_THROW(generate(params, prompt, 3, -0.5, 1), std::invalid_argument);
}

}  // namespace
}  // namespace kwm::lm
