// Deep diagonal recurrent stack: exact forward-mode sensitivities against finite differences
// (every mixer, |lam| near 1, missing values, lagged outputs), the layer-local approximation
// against the exact mode where they must agree, an explicitly unrolled single layer, the |lam|
// projection, per-group Jacobian requests and the parameter layout.
#include <gtest/gtest.h>

#include <complex>
#include <random>

#include "core/models/diagonal_stack.hpp"
#include "tests/models/model_test_support.hpp"

namespace kwm {
namespace {

using Complex = std::complex<double>;

DiagonalStackConfig small_config(MixerKind mixer) {
  DiagonalStackConfig c;
  c.n_in = 2;
  c.n_out = 2;
  c.output_lags = 1;
  c.width = 3;
  c.states = 2;
  c.layers = 2;
  c.mixer = mixer;
  c.mixer_hidden = 4;
  return c;
}

// Random O(0.3) weights; |lam| alternates between 0.999 (near the unit circle) and 0.7, or is
// set to `radius` for every state when given.
void randomise(DiagonalStack& model, std::uint64_t seed, double radius = -1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.3);
  Eigen::VectorXd theta(model.parameter_count());
  for (Index i = 0; i < theta.size(); ++i) theta(i) = normal(rng);
  for (const ParameterGroup& g : model.groups()) {
    if (g.kind != GroupKind::recurrence) continue;
    for (Index n = 0; n < g.units; ++n) {
      const double r = radius > 0.0 ? radius : (n % 2 == 0 ? 0.999 : 0.7);
      theta(g.offset + n * g.unit_size()) = std::log(-std::log(r));
      theta(g.offset + n * g.unit_size() + 1) = 0.5 + 0.4 * static_cast<double>(n);
    }
  }
  model.set_theta(theta);
}

void expect_matches_finite_differences(const DiagonalStackConfig& config) {
  DiagonalStack model(config);
  randomise(model, 17);
  ASSERT_GT(model.max_modulus(), 0.998);
  const test::Sequence s =
      test::random_sequence(20, config.n_in, config.n_out, 4, {{5, 0}, {9, -1}});
  const test::Trajectory exact = test::run(model, s);
  const auto fd = test::finite_difference_jacobians(model, s);
  for (std::size_t t = 0; t < s.u.size(); ++t) {
    // Central differences (h = 1e-6 relative) agree to ~1e-9; 1e-6 leaves room.
    EXPECT_LT(test::mixed_error(exact.jacobian[t], fd[t]), 1e-6) << "t = " << t;
  }
}

TEST(DiagonalStack, ExactSensitivitiesMatchFiniteDifferencesGlu) {
  expect_matches_finite_differences(small_config(MixerKind::glu));
}

TEST(DiagonalStack, ExactSensitivitiesMatchFiniteDifferencesMlp) {
  expect_matches_finite_differences(small_config(MixerKind::mlp));
}

TEST(DiagonalStack, ExactSensitivitiesMatchFiniteDifferencesThreeLayersNoMixer) {
  DiagonalStackConfig c = small_config(MixerKind::none);
  c.layers = 3;
  c.n_in = 0;  // driven by lagged outputs only
  c.output_lags = 2;
  expect_matches_finite_differences(c);
}

// Jacobian blocks of the groups at or above the first group of `layer_prefix`.
Eigen::MatrixXd columns_from(const SequenceModel& model, const Eigen::MatrixXd& h,
                             const std::string& first_group) {
  const Index offset =
      model.groups()[static_cast<std::size_t>(find_group(model.groups(), first_group))].offset;
  return h.rightCols(h.cols() - offset);
}

TEST(DiagonalStack, LayerLocalIsExactForTheTopLayerAndReadout) {
  DiagonalStackConfig c = small_config(MixerKind::glu);
  DiagonalStack exact_model(c);
  c.sensitivity = SensitivityMode::layer_local;
  DiagonalStack local_model(c);
  randomise(exact_model, 23);
  local_model.set_theta(exact_model.theta());
  const test::Sequence s = test::random_sequence(20, 2, 2, 8, {{3, 1}});
  const test::Trajectory exact = test::run(exact_model, s);
  const test::Trajectory local = test::run(local_model, s);
  double lower_difference = 0.0;
  for (std::size_t t = 0; t < s.u.size(); ++t) {
    EXPECT_EQ(exact.yhat[t], local.yhat[t]);
    // Same arithmetic in a different order: agreement to rounding, 1e-12.
    EXPECT_LT(test::mixed_error(columns_from(local_model, local.jacobian[t], "layer2.recurrence"),
                                columns_from(exact_model, exact.jacobian[t], "layer2.recurrence")),
              1e-12);
    lower_difference = std::max(lower_difference, (local.jacobian[t] - exact.jacobian[t]).norm());
  }
  // Below the top layer the dropped recurrent paths do matter: it is an approximation.
  EXPECT_GT(lower_difference, 1e-3);
}

TEST(DiagonalStack, LayerLocalIsExactWithoutRecurrentMemory) {
  // |lam| = exp(-e^5) ~ 1e-65: no layer remembers, so the instantaneous Jacobians are the whole
  // story and the layer-local Jacobian equals the exact one for every group.
  for (MixerKind mixer : {MixerKind::glu, MixerKind::mlp, MixerKind::none}) {
    DiagonalStackConfig c = small_config(mixer);
    DiagonalStack exact_model(c);
    c.sensitivity = SensitivityMode::layer_local;
    DiagonalStack local_model(c);
    randomise(exact_model, 29, 1e-65);
    local_model.set_theta(exact_model.theta());
    const test::Sequence s = test::random_sequence(8, 2, 2, 9);
    const test::Trajectory exact = test::run(exact_model, s);
    const test::Trajectory local = test::run(local_model, s);
    for (std::size_t t = 0; t < s.u.size(); ++t) {
      EXPECT_LT(test::mixed_error(local.jacobian[t], exact.jacobian[t]), 1e-12)  // rounding only
          << "mixer " << to_string(mixer) << ", t = " << t;
    }
  }
}

TEST(DiagonalStack, SingleLayerWithoutMixerEqualsUnrolledSum) {
  DiagonalStackConfig c = small_config(MixerKind::none);
  c.layers = 1;
  c.output_lags = 0;
  c.states = 3;
  DiagonalStack model(c);
  randomise(model, 31);
  const test::Sequence s = test::random_sequence(20, 2, 2, 10);
  const test::Trajectory trajectory = test::run(model, s, false);

  // yhat_t = W_out (z0_t + Re(sum_n C_.n sum_{k<=t} lam_n^{t-k} B_n. z0_k) + D (.) z0_t) + b,
  // with lam_n = exp(-exp(nu_n) + i theta_n) and powers taken explicitly, not recursively.
  const Eigen::VectorXd& theta = model.theta();
  const auto& groups = model.groups();
  const auto w_in =
      group_matrix(theta, groups[static_cast<std::size_t>(find_group(groups, "input"))]);
  const auto rec = group_matrix(
      theta, groups[static_cast<std::size_t>(find_group(groups, "layer1.recurrence"))]);
  const auto d =
      group_matrix(theta, groups[static_cast<std::size_t>(find_group(groups, "layer1.skip"))]);
  const auto w_out =
      group_matrix(theta, groups[static_cast<std::size_t>(find_group(groups, "readout"))]);
  const Index h = c.width;
  std::vector<Eigen::VectorXd> z0;
  for (const auto& u : s.u) z0.push_back(w_in.leftCols(2) * u + w_in.col(2));
  for (std::size_t t = 0; t < s.u.size(); ++t) {
    Eigen::VectorXd y = d.col(0).cwiseProduct(z0[t]);
    for (Index n = 0; n < c.states; ++n) {
      const Complex lam = std::exp(Complex(-std::exp(rec(n, 0)), rec(n, 1)));
      Complex hn = 0.0;
      for (std::size_t k = 0; k <= t; ++k) {
        Complex bz = 0.0;
        for (Index j = 0; j < h; ++j) bz += Complex(rec(n, 2 + j), rec(n, 2 + h + j)) * z0[k](j);
        hn += std::pow(lam, static_cast<double>(t - k)) * bz;
      }
      for (Index i = 0; i < h; ++i)
        y(i) += (Complex(rec(n, 2 + 2 * h + i), rec(n, 2 + 3 * h + i)) * hn).real();
    }
    const Eigen::VectorXd z1 = z0[t] + y;
    const Eigen::VectorXd yhat = w_out.leftCols(h) * z1 + w_out.col(h);
    // Recursion vs explicit powers: rounding differences only, 1e-12 relative.
    EXPECT_LT(test::mixed_error(trajectory.yhat[t], yhat), 1e-12) << "t = " << t;
  }
}

TEST(DiagonalStack, ProjectionKeepsEveryModulusInsideTheMargin) {
  DiagonalStack model(small_config(MixerKind::glu));
  randomise(model, 37, 1.0 - 1e-12);
  ASSERT_GT(model.max_modulus(), 1.0 - 1e-11);
  const double margin = 1e-3;
  const StabilityReport report = model.project_to_stable(margin);
  EXPECT_TRUE(report.changed);
  // exp(-exp(log(-log(b)))) reproduces b to a few ulps.
  EXPECT_LE(report.spectral_radius, 1.0 - margin + 1e-15);
  EXPECT_LT(model.max_modulus(), 1.0);
  EXPECT_FALSE(model.project_to_stable(margin).changed);
}

TEST(DiagonalStack, RequestedJacobianBlocksOnly) {
  for (SensitivityMode mode : {SensitivityMode::exact, SensitivityMode::layer_local}) {
    DiagonalStackConfig c = small_config(MixerKind::mlp);
    c.sensitivity = mode;
    DiagonalStack full(c), partial(c);
    randomise(full, 41);
    partial.set_theta(full.theta());
    std::vector<bool> wanted(full.groups().size(), false);
    const Index top = find_group(full.groups(), "layer2.recurrence");
    const Index readout = find_group(full.groups(), "readout");
    wanted[static_cast<std::size_t>(top)] = true;
    wanted[static_cast<std::size_t>(readout)] = true;
    partial.request_jacobians(wanted);
    const test::Sequence s = test::random_sequence(6, 2, 2, 12);
    full.reset();
    partial.reset();
    for (std::size_t t = 0; t < s.u.size(); ++t) {
      const LinearizedPrediction& a = full.step(s.u[t]);
      const LinearizedPrediction& b = partial.step(s.u[t]);
      for (std::size_t g = 0; g < wanted.size(); ++g) {
        if (wanted[g]) {
          EXPECT_EQ(a.jacobian[g], b.jacobian[g]);
        } else {
          EXPECT_EQ(b.jacobian[g].size(), 0);
        }
      }
      EXPECT_THROW(b.dense_jacobian(), std::logic_error);
      full.advance(s.y[t]);
      partial.advance(s.y[t]);
    }
  }
}

TEST(DiagonalStack, LayoutIsContiguousAndScalesToMillions) {
  DiagonalStackConfig c;
  c.n_in = 8;
  c.n_out = 4;
  c.width = 256;
  c.states = 64;
  c.layers = 6;
  c.mixer = MixerKind::glu;
  c.sensitivity = SensitivityMode::layer_local;
  DiagonalStack model(c);
  // input H (n_in + 1) + L (N (4H + 2) + H + H (2H + 2)) + n_out (H + 1)
  const Index h = 256, n = 64;
  EXPECT_EQ(model.parameter_count(),
            h * 9 + 6 * (n * (4 * h + 2) + h + h * (2 * h + 2)) + 4 * (h + 1));
  EXPECT_GT(model.parameter_count(), 1'000'000);
  Index next = 0;
  for (const ParameterGroup& g : model.groups()) {
    EXPECT_EQ(g.offset, next) << g.name;
    EXPECT_EQ(g.size % g.units, 0) << g.name;
    next += g.size;
  }
  EXPECT_EQ(next, model.parameter_count());
  EXPECT_LT(model.max_modulus(), 1.0);
  // Layer-local steps at this size are cheap enough for a unit test.
  model.reset();
  for (int t = 0; t < 2; ++t) {
    const LinearizedPrediction& p = model.step(Eigen::VectorXd::Ones(8));
    EXPECT_TRUE(p.yhat.allFinite());
    EXPECT_TRUE(p.dense_jacobian().allFinite());
    model.advance(Eigen::VectorXd::Zero(4));
  }
}

TEST(DiagonalStack, BadConfigsAreReportedByKey) {
  DiagonalStackConfig c;
  c.max_radius = 1.0;
  try {
    DiagonalStack model(c);
    FAIL() << "max_radius = 1 accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("max_radius"), std::string::npos);
  }
  c = DiagonalStackConfig{};
  c.layers = 0;
  EXPECT_THROW(DiagonalStack{c}, std::invalid_argument);
}

}  // namespace
}  // namespace kwm
