// The whole model in fp64: transpose_jacobian with e = onehot - p equals -d(total_nll)/d(theta)
// for random entries of every tensor, and -d(total_nll)/dz for random entries of every linear
// layer's output z, by central differences (h = 1e-5, tolerance 1e-7 relative above 1, absolute
// below). Tied and untied heads, with and without the head bias.
#include <gtest/gtest.h>

#include <ostream>
#include <random>
#include <set>

#include "core/lm/gpt_backward.hpp"
#include "tests/lm/finite_difference.hpp"
#include "tests/lm/lm_test_support.hpp"

namespace kwm::lm {
namespace {

using testing::agrees;
using testing::central_difference;

using testing::kStep;
using testing::kTolerance;
constexpr int kEntriesPerTensor = 6;

struct Case {
  bool tied;
  bool head_bias;
  int length;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << (c.tied ? "tied" : "untied") << " head, " << (c.head_bias ? "with" : "no")
      << " bias, length " << c.length;
}

class GptDerivative : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const auto c = GetParam();
    params = testing::random_parameters(testing::small_config(c.tied, c.head_bias), 11);
    batch = testing::random_batch(params.config, 2, c.length, 12);
    const Matrix<double> logits = forward(params, batch, &cache);
    const auto loss = cross_entropy(logits, batch.targets);
    innovation = output_innovation(loss, batch.targets);
    tj = transpose_jacobian(params, cache, innovation);
  }

  // Up to kEntriesPerTensor distinct random indices of [0, size), always with the first and last.
  std::vector<Eigen::Index> sample(Eigen::Index size, std::mt19937_64& rng) const {
    std::set<Eigen::Index> picked = {0, size - 1};
    std::uniform_int_distribution<Eigen::Index> any(0, size - 1);
    while (static_cast<int>(picked.size()) < std::min<Eigen::Index>(kEntriesPerTensor, size)) {
      picked.insert(any(rng));
    }
    return {picked.begin(), picked.end()};
  }

  GptParameters<double> params;
  TokenBatch batch;
  ForwardCache<double> cache;
  Matrix<double> innovation;
  TransposedJacobian<double> tj;
};

TEST_P(GptDerivative, ParametersAreMinusTheLossGradient) {
  std::mt19937_64 rng(13);
  auto views = params.tensors();
  const auto result_views = tj.parameters.tensors();
  ASSERT_EQ(views.size(), result_views.size());
  for (std::size_t k = 0; k < views.size(); ++k) {
    ASSERT_EQ(views[k].name, result_views[k].name);
    ASSERT_EQ(views[k].size(), result_views[k].size());
    for (const auto i : sample(views[k].size(), rng)) {
      const double numeric = central_difference([&] { return testing::total_nll(params, batch); },
                                                views[k].data[i], kStep);
      EXPECT_TRUE(agrees(-numeric, result_views[k].data[i], kTolerance,
                         views[k].name + "[" + std::to_string(i) + "]"));
    }
  }
}

TEST_P(GptDerivative, LinearOutputsAreMinusTheLossGradientInZ) {
  const auto sites = linear_layers(params);
  ASSERT_EQ(tj.linear_output.size(), head_linear_index(params.config) + 1);
  ASSERT_EQ(cache.linear.size(), tj.linear_output.size());
  // The test's own composition of the kernels is the model's forward pass, bit for bit.
  const Matrix<double> logits = forward(params, batch, nullptr);
  const Matrix<double> no_offset =
      Matrix<double>::Zero(cache.linear[0].output.rows(), cache.linear[0].output.cols());
  EXPECT_EQ(testing::forward_with_offset(params, batch, 0, no_offset), logits);
  std::mt19937_64 rng(14);
  for (std::size_t s = 0; s < tj.linear_output.size(); ++s) {
    const auto& z = cache.linear[s].output;
    ASSERT_EQ(tj.linear_output[s].rows(), z.rows());
    ASSERT_EQ(tj.linear_output[s].cols(), z.cols());
    const std::string name = s < sites.size() ? sites[s].name : "head (tied)";
    Matrix<double> offset = Matrix<double>::Zero(z.rows(), z.cols());
    const auto loss = [&] {
      return cross_entropy(testing::forward_with_offset(params, batch, s, offset), batch.targets)
          .total_nll;
    };
    for (const auto i : sample(z.size(), rng)) {
      const double numeric = central_difference(loss, offset.data()[i], kStep);
      EXPECT_TRUE(agrees(-numeric, tj.linear_output[s].data()[i], kTolerance,
                         name + " output[" + std::to_string(i) + "]"));
    }
  }
}

// weight == linear_output * input^T and bias == row sums: the shared-row structure that ties the
// two derivative checks above together for every entry, not just the sampled ones.
TEST_P(GptDerivative, WeightsAreLinearOutputTimesInput) {
  auto result_sites = linear_layers(tj.parameters);
  for (std::size_t s = 0; s < result_sites.size(); ++s) {
    const Matrix<double> expected = tj.linear_output[s] * cache.linear[s].input.transpose();
    EXPECT_TRUE(result_sites[s].layer->weight.isApprox(expected, 1e-13)) << result_sites[s].name;
    const Vector<double> bias = tj.linear_output[s].rowwise().sum();
    if (result_sites[s].layer->bias.size() != 0) {
      EXPECT_TRUE(result_sites[s].layer->bias.isApprox(bias, 1e-13)) << result_sites[s].name;
    }
  }
  const auto head = head_linear_index(params.config);
  EXPECT_EQ(tj.linear_output[head], innovation);
  if (params.config.head_bias) {
    const Vector<double> bias = innovation.rowwise().sum();
    EXPECT_TRUE(tj.parameters.head.bias.isApprox(bias, 1e-13));
  }
}

TEST_P(GptDerivative, CacheHoldsEachLayersInputAndOutput) {
  auto sites = linear_layers(params);
  for (std::size_t s = 0; s < sites.size(); ++s) {
    Matrix<double> z = sites[s].layer->weight * cache.linear[s].input;
    if (sites[s].layer->bias.size() != 0) z.colwise() += sites[s].layer->bias;
    EXPECT_TRUE(cache.linear[s].output.isApprox(z, 1e-14)) << sites[s].name;
  }
  const auto head = head_linear_index(params.config);
  EXPECT_EQ(cache.linear[head].output, forward(params, batch, nullptr));
}

INSTANTIATE_TEST_SUITE_P(Heads, GptDerivative,
                         ::testing::Values(Case{true, true, 5}, Case{false, true, 5},
                                           Case{true, false, 8}, Case{false, false, 3}),
                         [](const auto& test_case) {
                           return std::string(test_case.param.tied ? "Tied" : "Untied") +
                                  (test_case.param.head_bias ? "Bias" : "NoBias") + "Length" +
                                  std::to_string(test_case.param.length);
                         });

}  // namespace
}  // namespace kwm::lm
