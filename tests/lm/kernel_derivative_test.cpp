// Each kernel's transposed Jacobian against central differences of <R, kernel(x)> for a random
// R: J^T R must equal the gradient of that scalar in every input and parameter entry (fp64,
// h = 1e-5, tolerance 1e-7 relative above 1 and absolute below).
#include <gtest/gtest.h>

#include <random>

#include "core/lm/attention.hpp"
#include "core/lm/cross_entropy.hpp"
#include "core/lm/embedding.hpp"
#include "core/lm/gelu.hpp"
#include "core/lm/layer_norm.hpp"
#include "core/lm/linear.hpp"
#include "tests/lm/finite_difference.hpp"

namespace kwm::lm {
namespace {

using testing::agrees;
using testing::central_difference;

using testing::kStep;
using testing::kTolerance;

Matrix<double> random_matrix(Eigen::Index rows, Eigen::Index cols, std::mt19937_64& rng,
                             double scale = 1.0) {
  std::normal_distribution<double> normal(0.0, scale);
  Matrix<double> m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

// Checks every entry of `variable` (a matrix or vector the objective reads) against `analytic`.
template <typename Var, typename F>
void check_all_entries(Var& variable, const Var& analytic, F&& objective, const std::string& what) {
  for (Eigen::Index i = 0; i < variable.size(); ++i) {
    const double numeric = central_difference(objective, variable.data()[i], kStep);
    EXPECT_TRUE(
        agrees(numeric, analytic.data()[i], kTolerance, what + "[" + std::to_string(i) + "]"));
  }
}

TEST(LmKernelDerivative, LayerNorm) {
  std::mt19937_64 rng(1);
  Matrix<double> x = random_matrix(6, 5, rng, 2.0);
  LayerNormParams<double> p{Vector<double>(random_matrix(6, 1, rng)).array() + 1.0,
                            random_matrix(6, 1, rng)};
  const Matrix<double> r = random_matrix(6, 5, rng);
  const double eps = 1e-5;
  const auto objective = [&] { return (r.array() * layer_norm(p, x, eps, nullptr).array()).sum(); };
  LayerNormCache<double> cache;
  layer_norm(p, x, eps, &cache);
  LayerNormParams<double> dp{Vector<double>::Zero(6), Vector<double>::Zero(6)};
  const Matrix<double> dx = layer_norm_transpose(p, cache, r, dp);
  check_all_entries(x, dx, objective, "layer_norm input");
  check_all_entries(p.gain, dp.gain, objective, "layer_norm gain");
  check_all_entries(p.bias, dp.bias, objective, "layer_norm bias");
}

TEST(LmKernelDerivative, AffineAccumulatesAndCarriesBack) {
  std::mt19937_64 rng(2);
  Matrix<double> w = random_matrix(4, 7, rng);
  Vector<double> b = random_matrix(4, 1, rng);
  Matrix<double> a = random_matrix(7, 5, rng);
  const Matrix<double> r = random_matrix(4, 5, rng);
  const auto objective = [&] { return (r.array() * affine(w, b, a).array()).sum(); };
  // Starting from a non-zero accumulator checks that the kernel adds rather than overwrites.
  const Matrix<double> w0 = random_matrix(4, 7, rng);
  const Vector<double> b0 = random_matrix(4, 1, rng);
  Matrix<double> dw = w0;
  Vector<double> db = b0;
  const Matrix<double> da = affine_transpose(w, a, r, dw, db);
  check_all_entries(a, da, objective, "affine input");
  const Matrix<double> dw_only = dw - w0;
  const Vector<double> db_only = db - b0;
  check_all_entries(w, dw_only, objective, "affine weight");
  check_all_entries(b, db_only, objective, "affine bias");
}

TEST(LmKernelDerivative, Gelu) {
  std::mt19937_64 rng(3);
  Matrix<double> x = random_matrix(5, 6, rng, 3.0);
  const Matrix<double> r = random_matrix(5, 6, rng);
  const auto objective = [&] { return (r.array() * gelu(x).array()).sum(); };
  check_all_entries(x, gelu_transpose(x, r), objective, "gelu input");
}

TEST(LmKernelDerivative, GeluIsTheTanhApproximation) {
  Matrix<double> x(1, 3);
  x << -1.5, 0.25, 2.0;
  const Matrix<double> y = gelu(x);
  for (Eigen::Index i = 0; i < 3; ++i) {
    const double v = x(0, i);
    const double expected =
        0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR(y(0, i), expected, 1e-15);
  }
}

TEST(LmKernelDerivative, CausalAttention) {
  std::mt19937_64 rng(4);
  const int batch = 2, length = 4, heads = 2, d = 6;
  Matrix<double> qkv = random_matrix(3 * d, batch * length, rng, 1.5);
  const Matrix<double> r = random_matrix(d, batch * length, rng);
  const auto objective = [&] {
    return (r.array() * causal_attention(qkv, batch, length, heads, nullptr).array()).sum();
  };
  AttentionCache<double> cache;
  causal_attention(qkv, batch, length, heads, &cache);
  const Matrix<double> dqkv = causal_attention_transpose(qkv, cache, r, batch, length, heads);
  check_all_entries(qkv, dqkv, objective, "attention qkv");
}

TEST(LmKernelDerivative, AttentionIsCausal) {
  std::mt19937_64 rng(5);
  const int batch = 2, length = 5, heads = 3, d = 6;
  Matrix<double> qkv = random_matrix(3 * d, batch * length, rng);
  const Matrix<double> before = causal_attention(qkv, batch, length, heads, nullptr);
  qkv.col(3).setRandom();  // sequence 0, position 3: positions 0..2 must not see it
  const Matrix<double> after = causal_attention(qkv, batch, length, heads, nullptr);
  EXPECT_EQ(before.leftCols(3), after.leftCols(3));
  EXPECT_EQ(before.rightCols(length), after.rightCols(length));  // the other sequence
  EXPECT_NE(before.col(3), after.col(3));
  // Position 0 attends only to itself: its context is its own value vector.
  EXPECT_TRUE(before.col(0).isApprox(qkv.block(2 * d, 0, d, 1), 1e-14));
}

TEST(LmKernelDerivative, Embedding) {
  std::mt19937_64 rng(6);
  const int batch = 2, length = 3;
  Matrix<double> tokens_e = random_matrix(5, 4, rng);
  Matrix<double> positions_e = random_matrix(6, 4, rng);        // context 6 > length
  const std::vector<std::int32_t> tokens = {1, 4, 1, 0, 1, 3};  // repeats accumulate
  const Matrix<double> r = random_matrix(4, batch * length, rng);
  const auto objective = [&] {
    return (r.array() * embed(tokens_e, positions_e, tokens, batch, length).array()).sum();
  };
  Matrix<double> dt = Matrix<double>::Zero(5, 4);
  Matrix<double> dpos = Matrix<double>::Zero(6, 4);
  embed_transpose(tokens, batch, length, r, dt, dpos);
  check_all_entries(tokens_e, dt, objective, "token embedding");
  check_all_entries(positions_e, dpos, objective, "position embedding");
}

TEST(LmKernelDerivative, CrossEntropyInnovationIsMinusTheGradient) {
  std::mt19937_64 rng(7);
  Matrix<double> logits = random_matrix(7, 4, rng, 2.0);
  const std::vector<std::int32_t> targets = {0, 6, 3, 3};
  const auto objective = [&] { return cross_entropy(logits, targets).total_nll; };
  const auto loss = cross_entropy(logits, targets);
  const Matrix<double> minus_gradient = -output_innovation(loss, targets);
  check_all_entries(logits, minus_gradient, objective, "logits");
  EXPECT_NEAR(loss.mean_nll, loss.total_nll / 4.0, 1e-15);
}

TEST(LmKernelDerivative, CrossEntropyIsStableForHugeLogits) {
  Matrix<double> logits(3, 1);
  logits << 1000.0, 999.0, -1000.0;
  const auto loss = cross_entropy(logits, {1});
  // -log softmax_1 = log(1 + e^-1 + e^-2000) + 1
  EXPECT_NEAR(loss.total_nll, std::log1p(std::exp(-1.0)) + 1.0, 1e-12);
  EXPECT_NEAR(loss.probabilities.sum(), 1.0, 1e-15);
  Matrix<float> logits_f = logits.cast<float>();
  EXPECT_NEAR(cross_entropy(logits_f, {1}).total_nll, std::log1p(std::exp(-1.0)) + 1.0, 1e-6);
}

TEST(LmKernelDerivative, CrossEntropyRejectsBadTargets) {
  const Matrix<double> logits = Matrix<double>::Zero(4, 2);
  EXPECT_THROW(cross_entropy(logits, {0, 4}), std::invalid_argument);
  EXPECT_THROW(cross_entropy(logits, {0, -1}), std::invalid_argument);
  EXPECT_THROW(cross_entropy(logits, {0}), std::invalid_argument);
}

}  // namespace
}  // namespace kwm::lm
