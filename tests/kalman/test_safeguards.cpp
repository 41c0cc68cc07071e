// Safeguards of ALGORITHMS.md sections 6-7: NaN/Inf inputs skipped and counted with the state
// unchanged bit for bit, escalating jitter then a counted skip, chi-square gating (reject and
// inflate), adaptive R, eigenvalue floor/ceiling, trace cap, process noise and forgetting in
// both forms, block health figures, and construction errors.
// Tolerances: fp64 1e-12 relative for closed-form single steps; fp32 1e-5.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/kalman/block_health.hpp"
#include "core/kalman/chi_square.hpp"
#include "core/kalman/decoupled_ekf.hpp"
#include "core/kalman/eigenvalue_clamp.hpp"
#include "core/kalman/information_filter.hpp"
#include "core/kalman/predict.hpp"
#include "core/kalman/shared_row_rls.hpp"
#include "tests/kalman/kalman_test_support.hpp"

namespace kwm {
namespace {

using test::MatrixXd;
using test::relative_error;
using test::VectorXd;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

template <typename T>
class Safeguards : public ::testing::Test {
 protected:
  test::Fixture<T> fx;
  double tol = test::tolerance<T>(1e-12, 1e-5);
};
TYPED_TEST_SUITE(Safeguards, test::ScalarTypes);

TYPED_TEST(Safeguards, NonFiniteDekfInputsAreSkippedAndCountedBitForBit) {
  using T = TypeParam;
  auto& f = this->fx;
  std::mt19937_64 rng(2);
  ParameterBlock<T> dense = make_dense_block(f.be(), 1, f.up(test::random_matrix(rng, 3, 1)),
                                             f.up(test::random_spd(rng, 3)));
  ParameterBlock<T> diagonal =
      make_diagonal_block(f.be(), 2, f.up(test::random_matrix(rng, 2, 1)), f.up(VectorXd::Ones(2)));
  NoiseConfig noise_config;
  noise_config.mode = NoiseMode::adaptive;
  ObservationNoise<T> noise(noise_config);
  DecoupledEkf<T> ekf(f.be(), UpdateConfig{});
  auto step = [&](MatrixXd h, VectorXd e) {
    std::vector<BlockObservation<T>> obs{{&dense, f.up(h.leftCols(3))},
                                         {&diagonal, f.up(h.rightCols(2))}};
    return ekf.update(obs, f.up(e), noise);
  };
  for (int t = 0; t < 5; ++t) {
    ASSERT_TRUE(step(test::random_matrix(rng, 2, 5), test::random_matrix(rng, 2, 1)).applied());
  }
  const auto before_dense = test::snapshot(f.be(), dense);
  const auto before_diagonal = test::snapshot(f.be(), diagonal);
  const std::vector<T> before_noise = noise.estimate();
  const MatrixXd h = test::random_matrix(rng, 2, 5);
  const VectorXd e = test::random_matrix(rng, 2, 1);
  int expected_nonfinite = 0;
  for (const double bad : {kNaN, kInf, -kInf}) {
    for (int where = 0; where < 4; ++where) {
      MatrixXd hb = h;
      VectorXd eb = e;
      if (where == 0) hb(1, 0) = bad;  // dense block's Jacobian
      if (where == 1) hb(0, 4) = bad;  // diagonal block's Jacobian
      if (where == 2) eb(1) = bad;     // innovation (y - yhat)
      const UpdateReport<T> report =
          where == 3 ? ekf.update(std::vector<BlockObservation<T>>{{&dense, f.up(h.leftCols(3))}},
                                  f.up(e), f.up(MatrixXd::Constant(2, 2, bad)))
                     : step(hb, eb);
      ++expected_nonfinite;
      EXPECT_EQ(report.status, UpdateStatus::skipped_nonfinite) << bad << " at " << where;
      EXPECT_EQ(test::snapshot(f.be(), dense), before_dense) << bad << " at " << where;
      EXPECT_EQ(test::snapshot(f.be(), diagonal), before_diagonal) << bad << " at " << where;
      EXPECT_EQ(noise.estimate(), before_noise);
    }
  }
  EXPECT_EQ(ekf.counters().nonfinite, expected_nonfinite);
  EXPECT_EQ(ekf.counters().skips, expected_nonfinite);
  EXPECT_EQ(ekf.counters().updates, 5);
  EXPECT_EQ(dense.counters.nonfinite, expected_nonfinite);
  EXPECT_EQ(diagonal.counters.nonfinite, expected_nonfinite - 3);  // R case left it out
  EXPECT_TRUE(step(h, e).applied());
  EXPECT_NE(test::snapshot(f.be(), dense), before_dense);
}

TYPED_TEST(Safeguards, NonFiniteStatisticsAndSamplesAreSkippedBitForBit) {
  using T = TypeParam;
  auto& f = this->fx;
  std::mt19937_64 rng(3);
  // Information form.
  InformationFilter<T> filter(f.be(), JitterConfig{});
  ParameterBlock<T> info = make_dense_block(f.be(), 1, f.up(VectorXd::Zero(3)),
                                            f.up(MatrixXd::Identity(3, 3)), Form::information);
  InformationStatistics<T> stats = filter.zero_statistics(3);
  const MatrixXd h = test::random_matrix(rng, 2, 3);
  ASSERT_TRUE(
      filter.accumulate(stats, f.up(h), f.up(VectorXd::Ones(2)), f.up(MatrixXd::Identity(2, 2))));
  const MatrixXd precision = f.down(stats.precision);
  MatrixXd bad_h = h;
  bad_h(1, 1) = kInf;
  EXPECT_FALSE(filter.accumulate(stats, f.up(bad_h), f.up(VectorXd::Ones(2)),
                                 f.up(MatrixXd::Identity(2, 2))));
  EXPECT_FALSE(filter.accumulate(stats, f.up(h), f.up(VectorXd::Constant(2, kNaN)),
                                 f.up(MatrixXd::Identity(2, 2))));
  EXPECT_EQ(f.down(stats.precision), precision);
  EXPECT_EQ(stats.rejected, 2);
  EXPECT_EQ(stats.observations, 1);
  const auto before = test::snapshot(f.be(), info);
  InformationStatistics<T> poisoned = filter.zero_statistics(3);
  f.be().fill(poisoned.vector, std::numeric_limits<T>::quiet_NaN());
  EXPECT_EQ(filter.apply(info, poisoned), UpdateStatus::skipped_nonfinite);
  EXPECT_EQ(test::snapshot(f.be(), info), before);
  EXPECT_EQ(info.counters.nonfinite, 1);
  EXPECT_EQ(filter.apply(info, stats), UpdateStatus::applied);

  // Shared-row, per sample and batched.
  SharedRowRls<T> rls(f.be(), JitterConfig{});
  ParameterBlock<T> row = make_shared_row_block(f.be(), 2, f.up(test::random_matrix(rng, 2, 3)),
                                                f.up(MatrixXd::Identity(3, 3)));
  const auto row_before = test::snapshot(f.be(), row);
  EXPECT_EQ(rls.update(row, f.up(VectorXd::Constant(3, kNaN)), f.up(VectorXd::Ones(2)), T(1)),
            UpdateStatus::skipped_nonfinite);
  EXPECT_EQ(rls.update(row, f.up(VectorXd::Ones(3)), f.up(VectorXd::Constant(2, -kInf)), T(1)),
            UpdateStatus::skipped_nonfinite);
  EXPECT_EQ(test::snapshot(f.be(), row), row_before);
  EXPECT_EQ(row.counters.nonfinite, 2);
  SharedRowStatistics<T> row_stats = rls.zero_statistics(2, 3);
  MatrixXd inputs = test::random_matrix(rng, 3, 4);
  inputs(2, 3) = kNaN;
  EXPECT_FALSE(rls.accumulate(row_stats, f.up(inputs), f.up(MatrixXd::Ones(2, 4)), T(1)));
  EXPECT_EQ(row_stats.rejected, 1);
  EXPECT_EQ(f.down(row_stats.input_precision), MatrixXd::Zero(3, 3));
}

TYPED_TEST(Safeguards, JitterRescuesAnIndefiniteSAndThenTheUpdateIsSkipped) {
  using T = TypeParam;
  auto& f = this->fx;
  // S = H P H^T + R with R = -delta I and H P H^T singular (m = 3 > n = 2): S has an eigenvalue
  // -delta, so the factorisation needs jitter above delta.
  const double delta = 1e-4;
  const MatrixXd h = (MatrixXd(3, 2) << 1, 0, 0, 1, 1, 1).finished();
  ParameterBlock<T> block =
      make_dense_block(f.be(), 1, f.up(VectorXd::Zero(2)), f.up(MatrixXd::Identity(2, 2)));
  DecoupledEkf<T> ekf(f.be(), UpdateConfig{});
  const UpdateReport<T> rescued =
      test::linear_step(f, ekf, {&block}, h, VectorXd::Ones(3), -delta * MatrixXd::Identity(3, 3));
  EXPECT_TRUE(rescued.applied());
  EXPECT_GT(rescued.jitter_retries, 0);
  EXPECT_GT(static_cast<double>(rescued.jitter), delta);
  EXPECT_EQ(block.counters.jitter_retries, rescued.jitter_retries);

  // R = -10 I: hopeless within 8 retries (largest jitter 1e-9 * 1e7 * 1 = 1e-2).
  const auto before = test::snapshot(f.be(), block);
  const UpdateReport<T> failed =
      test::linear_step(f, ekf, {&block}, h, VectorXd::Ones(3), -10.0 * MatrixXd::Identity(3, 3));
  EXPECT_EQ(failed.status, UpdateStatus::skipped_cholesky);
  EXPECT_EQ(failed.jitter_retries, JitterConfig{}.max_retries);
  EXPECT_EQ(test::snapshot(f.be(), block), before);
  EXPECT_EQ(block.counters.cholesky_failures, 1);
  EXPECT_EQ(block.counters.skips, 1);
  EXPECT_EQ(block.counters.updates, 1);
}

TYPED_TEST(Safeguards, GateRejectsOutliersAndInflatesToTheThreshold) {
  using T = TypeParam;
  auto& f = this->fx;
  std::mt19937_64 rng(4);
  const MatrixXd p = test::random_spd(rng, 3);
  const VectorXd m0 = VectorXd::Zero(3);
  const MatrixXd h = test::random_matrix(rng, 2, 3);
  const MatrixXd r = 0.1 * MatrixXd::Identity(2, 2);
  const MatrixXd s = h * p * h.transpose() + r;
  const VectorXd outlier = 30.0 * VectorXd::Ones(2);  // y with yhat = 0
  const double nis = outlier.dot(s.llt().solve(outlier));
  const double threshold = chi_square_quantile(0.99, 2);
  ASSERT_GT(nis, threshold);

  UpdateConfig reject;
  reject.gating.mode = GateMode::reject;
  reject.gating.probability = 0.99;
  DecoupledEkf<T> rejecting(f.be(), reject);
  ParameterBlock<T> a = make_dense_block(f.be(), 1, f.up(m0), f.up(p));
  const auto before = test::snapshot(f.be(), a);
  const UpdateReport<T> rejected = test::linear_step(f, rejecting, {&a}, h, outlier, r);
  EXPECT_EQ(rejected.status, UpdateStatus::rejected_by_gate);
  EXPECT_NEAR(static_cast<double>(rejected.nis), nis, this->tol * nis * 10);
  EXPECT_NEAR(rejected.gate_threshold, threshold, 1e-12 * threshold);
  EXPECT_EQ(test::snapshot(f.be(), a), before);
  EXPECT_EQ(a.counters.gated, 1);
  EXPECT_TRUE(test::linear_step(f, rejecting, {&a}, h, 0.1 * VectorXd::Ones(2), r).applied());

  // Inflate: S' = c S with c = nis / threshold, i.e. R' = R + (c - 1) S.
  UpdateConfig inflate = reject;
  inflate.gating.mode = GateMode::inflate;
  DecoupledEkf<T> inflating(f.be(), inflate);
  ParameterBlock<T> b = make_dense_block(f.be(), 2, f.up(m0), f.up(p));
  const UpdateReport<T> inflated = test::linear_step(f, inflating, {&b}, h, outlier, r);
  ASSERT_TRUE(inflated.applied());
  const double c = nis / threshold;
  EXPECT_NEAR(inflated.inflation, c, this->tol * c * 10);
  const MatrixXd s_inflated = c * s;
  EXPECT_NEAR(outlier.dot(s_inflated.llt().solve(outlier)), threshold, 1e-9 * threshold);
  const MatrixXd k = s_inflated.llt().solve(h * p).transpose();
  EXPECT_LT(relative_error(f.down(b.mean), k * outlier), this->tol * 10);
  EXPECT_LT(relative_error(f.down(b.covariance), p - k * h * p), this->tol * 10);
  EXPECT_EQ(b.counters.inflated, 1);
}

TEST(SafeguardsFp64, AdaptiveNoiseTracksTheTrueVarianceAndKeepsItsFloor) {
  // Sage-Husa: a <- beta a + (1 - beta)(e^2 - H P H^T); E[e^2] = H P H^T + r, so a -> r.
  test::Fixture<double> f;
  std::mt19937_64 rng(6);
  const double true_r = 0.25;
  NoiseConfig config;
  config.mode = NoiseMode::adaptive;
  config.variance = 1.0;
  config.ema = 0.999;
  ObservationNoise<double> noise(config);
  const VectorXd truth = test::random_matrix(rng, 2, 1);
  ParameterBlock<double> block =
      make_dense_block(f.be(), 1, f.up(VectorXd::Zero(2)), f.up(MatrixXd::Identity(2, 2)));
  DecoupledEkf<double> ekf(f.be(), UpdateConfig{});
  std::normal_distribution<double> normal(0.0, std::sqrt(true_r));
  for (int t = 0; t < 20000; ++t) {
    const MatrixXd h = test::random_matrix(rng, 1, 2);
    const VectorXd y = h * truth + VectorXd::Constant(1, normal(rng));
    const VectorXd e = y - h * f.down(block.mean);
    std::vector<BlockObservation<double>> obs{{&block, f.up(h)}};
    ASSERT_TRUE(ekf.update(obs, f.up(e), noise).applied());
  }
  // Window ~1000 samples: the estimate's sd is ~ r sqrt(2 / 2000) = 3%; 15% leaves margin.
  EXPECT_NEAR(noise.estimate()[0], true_r, 0.15 * true_r);
  EXPECT_NEAR(f.down(noise.covariance(f.be(), 1))(0, 0), noise.estimate()[0], 1e-15);

  // Noiseless data: the EMA goes to ~0 or below and R stops at the floor.
  NoiseConfig floored = config;
  floored.ema = 0.9;
  floored.floor = 1e-3;
  ObservationNoise<double> quiet(floored);
  std::vector<double> innovation{0.0};
  std::vector<double> predicted{0.5};
  quiet.covariance(f.be(), 1);
  for (int t = 0; t < 100; ++t) quiet.adapt(innovation, predicted);
  EXPECT_LT(quiet.estimate()[0], 0.0);
  EXPECT_EQ(f.down(quiet.covariance(f.be(), 1))(0, 0), 1e-3);
  EXPECT_THROW(quiet.covariance(f.be(), 2), std::invalid_argument);
}

TYPED_TEST(Safeguards, EigenvalueFloorAndCeilingInEveryForm) {
  using T = TypeParam;
  auto& f = this->fx;
  std::mt19937_64 rng(7);
  const MatrixXd q = test::random_spd(rng, 3).householderQr().householderQ();
  // fp32 cannot hold L = P^-1 with a 1e15 spread (errors ~ 6e-8 * 1e9), so it clamps a milder P.
  const VectorXd w = sizeof(T) == sizeof(double) ? (VectorXd(3) << 1e-9, 1.0, 1e6).finished()
                                                 : (VectorXd(3) << 1e-5, 1.0, 1e5).finished();
  const MatrixXd p = q * w.asDiagonal() * q.transpose();
  const VectorXd clamped = (VectorXd(3) << 1e-3, 1.0, 1e3).finished();
  const MatrixXd expected = q * clamped.asDiagonal() * q.transpose();
  const double clamp_tol = test::tolerance<T>(1e-9, 1e-3);

  ParameterBlock<T> dense = make_dense_block(f.be(), 1, f.up(VectorXd::Zero(3)), f.up(p));
  EXPECT_EQ(clamp_covariance_eigenvalues(f.be(), dense, T(1e-3), T(1e3)), 2);
  EXPECT_LT(relative_error(f.down(dense.covariance), expected), clamp_tol);
  EXPECT_EQ(dense.counters.eigen_clamps, 2);

  ParameterBlock<T> info =
      make_dense_block(f.be(), 2, f.up(VectorXd::Zero(3)),
                       f.up(q * w.cwiseInverse().asDiagonal() * q.transpose()), Form::information);
  EXPECT_EQ(clamp_covariance_eigenvalues(f.be(), info, T(1e-3), T(1e3)), 2);
  EXPECT_LT(relative_error(f.down(info.information), expected.inverse()), clamp_tol);

  ParameterBlock<T> diagonal = make_diagonal_block(f.be(), 3, f.up(VectorXd::Zero(3)), f.up(w));
  EXPECT_EQ(clamp_covariance_eigenvalues(f.be(), diagonal, T(1e-3), T(1e3)), 2);
  EXPECT_LT(relative_error(f.down(diagonal.covariance), clamped), clamp_tol);
}

TYPED_TEST(Safeguards, ClampEveryKUpdates) {
  using T = TypeParam;
  auto& f = this->fx;
  UpdateConfig config;
  config.safeguards.clamp_every = 3;
  config.safeguards.eigen_floor = 0.0;
  config.safeguards.eigen_ceiling = 2.0;
  DecoupledEkf<T> ekf(f.be(), config);
  ParameterBlock<T> block =
      make_dense_block(f.be(), 1, f.up(VectorXd::Zero(3)), f.up(10.0 * MatrixXd::Identity(3, 3)));
  const MatrixXd h = (MatrixXd(1, 3) << 1.0, 0.0, 0.0).finished();  // leaves two directions at 10
  for (int t = 1; t <= 3; ++t) {
    ASSERT_TRUE(
        test::linear_step(f, ekf, {&block}, h, VectorXd::Ones(1), MatrixXd::Ones(1, 1)).applied());
    const BlockHealth health = block_health(f.be(), block);
    if (t < 3) {
      EXPECT_EQ(block.counters.eigen_clamps, 0);
      EXPECT_NEAR(health.max_eigenvalue, 10.0, 1e-5);
    } else {
      EXPECT_EQ(block.counters.eigen_clamps, 2);
      EXPECT_NEAR(health.max_eigenvalue, 2.0, 1e-5);
    }
  }
  EXPECT_EQ(ekf.counters().eigen_clamps, 2);
}

TYPED_TEST(Safeguards, ProcessNoiseForgettingAndTraceCapInBothForms) {
  using T = TypeParam;
  auto& f = this->fx;
  std::mt19937_64 rng(9);
  const MatrixXd p = test::random_spd(rng, 3);
  const double q = 0.3;
  const double local_tol = this->tol;

  ParameterBlock<T> dense = make_dense_block(f.be(), 1, f.up(VectorXd::Zero(3)), f.up(p));
  add_process_noise(f.be(), dense, static_cast<T>(q));
  EXPECT_LT(relative_error(f.down(dense.covariance), p + q * MatrixXd::Identity(3, 3)), local_tol);
  const VectorXd qd = (VectorXd(3) << 0.1, 0.2, 0.3).finished();
  add_process_noise(f.be(), dense, f.up(qd));
  EXPECT_LT(relative_error(f.down(dense.covariance),
                           p + q * MatrixXd::Identity(3, 3) + MatrixXd(qd.asDiagonal())),
            local_tol);

  ParameterBlock<T> info =
      make_dense_block(f.be(), 2, f.up(VectorXd::Zero(3)), f.up(p.inverse()), Form::information);
  add_process_noise(f.be(), info, static_cast<T>(q));
  add_process_noise(f.be(), info, f.up(qd));
  EXPECT_LT(
      relative_error(f.down(info.information),
                     (p + q * MatrixXd::Identity(3, 3) + MatrixXd(qd.asDiagonal())).inverse()),
      test::tolerance<T>(1e-12, 1e-4));

  ParameterBlock<T> diagonal =
      make_diagonal_block(f.be(), 3, f.up(VectorXd::Zero(3)), f.up(p.diagonal()));
  add_process_noise(f.be(), diagonal, static_cast<T>(q));
  EXPECT_LT(relative_error(f.down(diagonal.covariance), (p.diagonal().array() + q).matrix()),
            local_tol);

  // Forgetting: P / lambda, L lambda, and B lambda for shared-row information blocks.
  PredictConfig forgetting;
  forgetting.dynamics = Dynamics::forgetting;
  forgetting.forgetting = 0.5;
  ParameterBlock<T> f_dense = make_dense_block(f.be(), 4, f.up(VectorXd::Zero(3)), f.up(p));
  predict(f.be(), f_dense, forgetting);
  EXPECT_LT(relative_error(f.down(f_dense.covariance), 2.0 * p), local_tol);
  const MatrixXd w = test::random_matrix(rng, 2, 3);
  ParameterBlock<T> row =
      make_shared_row_block(f.be(), 5, f.up(w), f.up(p.inverse()), Form::information);
  predict(f.be(), row, forgetting);
  EXPECT_LT(relative_error(f.down(row.information), 0.5 * p.inverse()), local_tol);
  EXPECT_LT(relative_error(f.down(row.information_vector), 0.5 * w * p.inverse()), local_tol);
  EXPECT_LT(relative_error(f.down(row.mean), w), local_tol);

  // Trace cap: forgetting doubles P each step, the cap holds trace(P) at 4.
  PredictConfig capped = forgetting;
  capped.trace_cap = 4.0;
  ParameterBlock<T> c_dense = make_dense_block(f.be(), 6, f.up(VectorXd::Zero(3)), f.up(p));
  ParameterBlock<T> c_info =
      make_dense_block(f.be(), 7, f.up(VectorXd::Zero(3)), f.up(p.inverse()), Form::information);
  ParameterBlock<T> c_diag =
      make_diagonal_block(f.be(), 8, f.up(VectorXd::Zero(3)), f.up(p.diagonal()));
  for (int t = 0; t < 6; ++t) {
    for (ParameterBlock<T>* b : {&c_dense, &c_info, &c_diag}) predict(f.be(), *b, capped);
  }
  for (ParameterBlock<T>* b : {&c_dense, &c_info, &c_diag}) {
    EXPECT_NEAR(static_cast<double>(covariance_trace(f.be(), *b)), 4.0, 4.0 * local_tol * 10)
        << "block " << b->id;
    EXPECT_GT(b->counters.trace_caps, 0);
  }
  const double scale = 4.0 / (64.0 * p.trace());  // shape preserved: P * 2^6 * scale
  EXPECT_LT(relative_error(f.down(c_dense.covariance), 64.0 * scale * p), local_tol * 10);

  EXPECT_THROW(apply_forgetting(f.be(), dense, T(1.5)), std::invalid_argument);
  EXPECT_THROW(add_process_noise(f.be(), dense, T(-1)), std::invalid_argument);
  EXPECT_THROW(add_process_noise(f.be(), info, f.up(VectorXd::Zero(3))), std::invalid_argument);
}

TYPED_TEST(Safeguards, BlockHealthReportsCovarianceFigures) {
  using T = TypeParam;
  auto& f = this->fx;
  std::mt19937_64 rng(10);
  const MatrixXd p = test::random_spd(rng, 4, 0.1, 3.0);
  const Eigen::SelfAdjointEigenSolver<MatrixXd> eig(p);
  const double local_tol = this->tol;
  const double lo = eig.eigenvalues().minCoeff();
  const double hi = eig.eigenvalues().maxCoeff();

  for (const Form form : {Form::covariance, Form::information}) {
    ParameterBlock<T> block =
        make_dense_block(f.be(), 5, f.up(VectorXd::Zero(4)),
                         f.up(form == Form::covariance ? p : MatrixXd(p.inverse())), form);
    const BlockHealth health = block_health(f.be(), block);
    EXPECT_TRUE(health.finite);
    EXPECT_NEAR(health.trace, p.trace(), local_tol * p.trace() * 10);
    EXPECT_NEAR(health.min_eigenvalue, lo, local_tol * hi * 10);
    EXPECT_NEAR(health.max_eigenvalue, hi, local_tol * hi * 10);
    EXPECT_NEAR(health.condition, hi / lo, 1e-3 * hi / lo);
    EXPECT_NE(to_string(health).find("block 5 dense/" + to_string(form)), std::string::npos);
  }
  const VectorXd v = (VectorXd(3) << 0.5, 2.0, 8.0).finished();
  ParameterBlock<T> diagonal = make_diagonal_block(f.be(), 6, f.up(VectorXd::Zero(3)), f.up(v));
  const BlockHealth health = block_health(f.be(), diagonal);
  EXPECT_NEAR(health.trace, 10.5, 1e-5);
  EXPECT_EQ(health.min_eigenvalue, 0.5);
  EXPECT_EQ(health.max_eigenvalue, 8.0);
  EXPECT_EQ(health.condition, 16.0);
}

TEST(SafeguardsFp64, BlockConstructionChecksShapesAndValues) {
  test::Fixture<double> f;
  EXPECT_THROW(make_dense_block(f.be(), 1, f.up(VectorXd::Zero(3)), f.up(MatrixXd::Identity(2, 2))),
               std::invalid_argument);
  EXPECT_THROW(make_diagonal_block(f.be(), 2, f.up(VectorXd::Zero(2)),
                                   f.up((VectorXd(2) << 1.0, -1.0).finished())),
               std::invalid_argument);
  EXPECT_THROW(make_dense_block(f.be(), 3, f.up(VectorXd::Constant(2, kNaN)),
                                f.up(MatrixXd::Identity(2, 2))),
               std::invalid_argument);
  EXPECT_THROW(
      make_shared_row_block(f.be(), 4, f.up(MatrixXd::Zero(2, 3)), f.up(MatrixXd::Identity(2, 2))),
      std::invalid_argument);
}

}  // namespace
}  // namespace kwm
