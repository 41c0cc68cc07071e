// fp32 against the fp64 reference on the tiny model (vocab 256, d 64, 2 layers, context 64,
// batch 2): logits and every transposed Jacobian within a stated relative error (max |a - b|
// over max |b| per tensor): 1e-5 for logits, 2e-5 for transposed Jacobians; measured 5e-7 and
// 8e-7 (printed), so the bounds leave about 20x headroom.
#include <gtest/gtest.h>

#include <iostream>

#include "core/lm/gpt_backward.hpp"
#include "tests/lm/lm_test_support.hpp"

namespace kwm::lm {
namespace {

constexpr double kLogitTolerance = 1e-5;
constexpr double kJacobianTolerance = 2e-5;

template <typename A, typename B>
double relative_error(const A& single, const B& reference) {
  const double scale = reference.cwiseAbs().maxCoeff();
  return (single.template cast<double>() - reference).cwiseAbs().maxCoeff() /
         (scale > 0.0 ? scale : 1.0);
}

TEST(LmPrecision, Fp32MatchesFp64Reference) {
  GptConfig config;
  const auto reference = testing::random_parameters(config, 31, 0.1);
  const auto single = reference.cast<float>();
  const auto batch = testing::random_batch(config, 2, config.context, 32);

  ForwardCache<double> cache64;
  const Matrix<double> logits64 = forward(reference, batch, &cache64);
  const auto loss64 = cross_entropy(logits64, batch.targets);
  const auto tj64 =
      transpose_jacobian(reference, cache64, output_innovation(loss64, batch.targets));

  ForwardCache<float> cache32;
  const Matrix<float> logits32 = forward(single, batch, &cache32);
  const auto loss32 = cross_entropy(logits32, batch.targets);
  const auto tj32 = transpose_jacobian(single, cache32, output_innovation(loss32, batch.targets));

  const double logit_error = relative_error(logits32, logits64);
  EXPECT_LT(logit_error, kLogitTolerance);
  EXPECT_NEAR(loss32.mean_nll, loss64.mean_nll, kLogitTolerance * loss64.mean_nll);

  double worst = 0.0;
  const auto views64 = tj64.parameters.tensors();
  const auto views32 = tj32.parameters.tensors();
  ASSERT_EQ(views64.size(), views32.size());
  for (std::size_t k = 0; k < views64.size(); ++k) {
    const Eigen::Map<const Matrix<double>> a(views64[k].data, views64[k].rows, views64[k].cols);
    const Eigen::Map<const Matrix<float>> b(views32[k].data, views32[k].rows, views32[k].cols);
    const double error = relative_error(b, a);
    EXPECT_LT(error, kJacobianTolerance) << views64[k].name;
    worst = std::max(worst, error);
  }
  for (std::size_t s = 0; s < tj64.linear_output.size(); ++s) {
    const double error = relative_error(tj32.linear_output[s], tj64.linear_output[s]);
    EXPECT_LT(error, kJacobianTolerance) << "linear output " << s;
    worst = std::max(worst, error);
  }
  std::cout << "[ measured ] fp32 vs fp64: logits " << logit_error << ", transposed Jacobians "
            << worst << "\n";
}

}  // namespace
}  // namespace kwm::lm
