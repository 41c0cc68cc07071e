// The replicated-batch sharded DEKF under mpirun at 1-4 ranks: for every Kalman learner kind the
// parameters after K updates equal the single-process learner's (fp64; the sum of the partial
// H P H^T runs in a different order when blocks are spread over ranks, so the tolerance is 1e-12
// relative to max |theta|; at one rank the two are bitwise equal), every rank holds bitwise the
// same theta, two runs at the same rank count are bitwise equal, and each rank stores only its
// own blocks' covariances. A NaN Jacobian on one rank makes every rank skip that update.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/backend/host_transfer.hpp"
#include "core/learners/kalman/kalman_sequence_learner.hpp"
#include "core/models/model_io.hpp"
#include "distributed/replicated_batch.hpp"
#include "tests/distributed/mpi_test_main.hpp"

namespace kwm {
namespace {

using testing::comm;

constexpr double kTolerance = 1e-12;

struct Case {
  const char* name;
  KalmanLearnerKind kind;
  Blocking blocking;
  const char* model;  // YAML
};

const char* kDiagonalStack =
    "{type: diagonal_stack, n_in: 1, n_out: 2, output_lags: 1, width: 4, states: 4, layers: 2, "
    "mixer: glu, seed: 3}";
const char* kInnovationSsm = "{type: innovation_ssm, n_in: 1, n_out: 2, states: 3, seed: 7}";

std::unique_ptr<SequenceModel> model_from(const char* yaml) { return make_model(YAML::Load(yaml)); }

KalmanLearnerConfig learner_config(const Case& c) {
  KalmanLearnerConfig k;
  k.kind = c.kind;
  k.blocking = c.blocking;
  k.initial_variance = 0.05;
  k.kalman.predict.dynamics = Dynamics::process_noise;
  k.kalman.predict.process_noise = 1e-6;
  k.kalman.noise.mode = NoiseMode::adaptive;
  k.kalman.noise.variance = 0.3;
  return k;
}

// A 2-output, 1-input series with one missing value, the same on every rank.
struct Series {
  Eigen::MatrixXd u, y;
};
Series simulate(int steps) {
  std::mt19937 rng(11);
  std::normal_distribution<double> normal;
  Series s{Eigen::MatrixXd(steps, 1), Eigen::MatrixXd(steps, 2)};
  double x0 = 0, x1 = 0;
  for (int t = 0; t < steps; ++t) {
    s.u(t, 0) = std::sin(0.2 * t) + 0.3 * normal(rng);
    s.y(t, 0) = x0 + 0.5 * s.u(t, 0) + 0.1 * normal(rng);
    s.y(t, 1) = x1 - x0 + 0.1 * normal(rng);
    const double n0 = 0.8 * x0 + 0.2 * x1 + s.u(t, 0), n1 = -0.3 * x0 + 0.7 * x1 + 0.5 * s.u(t, 0);
    x0 = n0, x1 = n1;
  }
  s.y(7, 1) = std::nan("");
  return s;
}

struct TrainedRun {
  Eigen::VectorXd theta;
  Eigen::MatrixXd variance;  // predictive variances, one row per step
  std::int64_t updates = 0;
  std::size_t local_covariance_values = 0;
  std::size_t local_blocks = 0;
};

TrainedRun train(const Case& c, const Series& s, bool sharded) {
  LearnerSharding sharding;
  if (sharded) sharding = replicated_batch_sharding(*comm);
  KalmanSequenceLearner learner(model_from(c.model), learner_config(c), sharding);
  TrainedRun run;
  run.variance.resize(s.u.rows(), 2);
  for (Index t = 0; t < s.u.rows(); ++t) {
    run.variance.row(t) = learner.predict(s.u.row(t).transpose()).variance.transpose();
    learner.observe(s.y.row(t).transpose(), true);
  }
  run.theta = learner.model().theta();
  run.updates = learner.filter().counters().updates;
  run.local_blocks = learner.blocks().size();
  for (const auto& b : learner.blocks())
    run.local_covariance_values += static_cast<std::size_t>(b.covariance.size());
  return run;
}

double max_relative_difference(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / std::max(1e-300, b.cwiseAbs().maxCoeff());
}

class EveryLearner : public ::testing::TestWithParam<Case> {};

TEST_P(EveryLearner, ShardedEqualsSingleProcessAndRanksAgreeBitwise) {
  const Case& c = GetParam();
  const Series s = simulate(60);
  const TrainedRun single = train(c, s, false);
  const TrainedRun a = train(c, s, true);
  const TrainedRun b = train(c, s, true);

  ASSERT_EQ(a.updates, single.updates);
  EXPECT_GT(a.updates, 50);
  if (comm->size() == 1) {
    EXPECT_EQ(a.theta, single.theta) << "one rank must be bitwise the single-process learner";
  }
  EXPECT_LE(max_relative_difference(a.theta, single.theta), kTolerance)
      << c.name << " at " << comm->size() << " ranks";
  EXPECT_LE(max_relative_difference(a.variance, single.variance), kTolerance);
  // Moving theta at all: the comparison is not between two untouched initial values.
  EXPECT_GT((a.theta - model_from(c.model)->theta()).norm(), 1e-3);

  // Two runs at the same rank count: bitwise equal.
  EXPECT_EQ(0, std::memcmp(a.theta.data(), b.theta.data(), sizeof(double) * a.theta.size()));

  // Every rank holds bitwise the same theta.
  const auto n = static_cast<std::size_t>(a.theta.size());
  std::vector<double> all(n * std::size_t(comm->size()));
  comm->all_gather(a.theta.data(), n, all.data());
  for (int r = 0; r < comm->size(); ++r)
    EXPECT_EQ(0, std::memcmp(all.data() + std::size_t(r) * n, a.theta.data(), n * sizeof(double)))
        << "rank " << r << " holds a different theta";

  // Covariance is sharded: the ranks' stores add up to the single-process store, no duplicates.
  double mine = double(a.local_covariance_values), blocks = double(a.local_blocks);
  comm->all_reduce_sum(&mine, 1);
  comm->all_reduce_sum(&blocks, 1);
  EXPECT_EQ(mine, double(single.local_covariance_values));
  EXPECT_EQ(blocks, double(single.local_blocks));
}

INSTANTIATE_TEST_SUITE_P(
    Learners, EveryLearner,
    ::testing::Values(Case{"dekf_per_group_stack", KalmanLearnerKind::sensitivity_dekf,
                           Blocking::per_group, kDiagonalStack},
                      Case{"dekf_per_unit_stack", KalmanLearnerKind::sensitivity_dekf,
                           Blocking::per_unit, kDiagonalStack},
                      Case{"dekf_per_unit_ssm", KalmanLearnerKind::sensitivity_dekf,
                           Blocking::per_unit, kInnovationSsm},
                      Case{"dense_ekf_ssm", KalmanLearnerKind::dense_ekf, Blocking::per_group,
                           kInnovationSsm},
                      Case{"diagonal_ekf_stack", KalmanLearnerKind::diagonal_ekf,
                           Blocking::per_group, kDiagonalStack}),
    [](const ::testing::TestParamInfo<Case>& p) { return std::string(p.param.name); });

TEST(ShardedDekf, NanJacobianOnOneRankMakesEveryRankSkip) {
  // Four dense blocks of 3 parameters, owned round-robin; the last rank's first block gets a NaN
  // Jacobian at update 1. Every rank must skip update 1 (state untouched) and apply update 2.
  auto backend = make_backend<double>("cpu");
  UpdateConfig config;
  DecoupledEkf<double> ekf(*backend, config, [](double* data, Index count) {
    comm->all_reduce_sum(data, static_cast<std::size_t>(count));
  });
  std::vector<ParameterBlock<double>> mine;
  for (int b = 0; b < 4; ++b) {
    if (b % comm->size() != comm->rank()) continue;
    mine.push_back(make_dense_block(*backend, b, to_backend(*backend, Eigen::VectorXd::Zero(3)),
                                    to_backend(*backend, Eigen::MatrixXd::Identity(3, 3))));
  }
  const Tensor<double> e = to_backend(*backend, Eigen::Vector2d(0.5, -0.2));
  const Tensor<double> r = to_backend(*backend, Eigen::Matrix2d::Identity().eval());
  for (int update = 0; update < 3; ++update) {
    std::vector<BlockObservation<double>> observations;
    for (auto& block : mine) {
      Eigen::MatrixXd h = Eigen::MatrixXd::Constant(2, 3, 0.1 * double(block.id + 1));
      if (update == 1 && comm->rank() == comm->size() - 1 && &block == &mine.front())
        h(1, 2) = std::nan("");
      observations.push_back({&block, to_backend(*backend, h)});
    }
    std::vector<Eigen::VectorXd> before;
    for (auto& block : mine) before.push_back(to_host(*backend, block.mean));
    const UpdateReport<double> report = ekf.update(observations, e, r);
    // Each rank reports what it decided; all must agree.
    double skipped = report.status == UpdateStatus::skipped_nonfinite ? 1.0 : 0.0;
    comm->all_reduce_sum(&skipped, 1);
    if (update == 1) {
      EXPECT_EQ(skipped, double(comm->size())) << "every rank must skip the poisoned update";
      for (std::size_t i = 0; i < mine.size(); ++i)
        EXPECT_EQ(to_host(*backend, mine[i].mean), before[i]);
    } else {
      EXPECT_EQ(skipped, 0.0) << "update " << update;
      EXPECT_TRUE(report.applied());
    }
  }
  EXPECT_EQ(ekf.counters().skips, 1);
  EXPECT_EQ(ekf.counters().updates, 2);
}

}  // namespace
}  // namespace kwm

int main(int argc, char** argv) { return kwm::testing::run_mpi_tests(argc, argv); }
