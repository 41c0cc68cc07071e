// A sharded training loop for rank_failure_check.sh: `victim KILL_RANK KILL_STEP` trains the
// sensitivity-DEKF sharded over every rank and, at step KILL_STEP, rank KILL_RANK dies by SIGKILL
// (no chance to clean up, as with an OOM kill or a lost node). KILL_RANK -1: nobody dies and the
// run must finish with status 0.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "core/learners/kalman/kalman_sequence_learner.hpp"
#include "core/models/model_io.hpp"
#include "distributed/mpi_communicator.hpp"
#include "distributed/replicated_batch.hpp"

int main(int argc, char** argv) {
  auto world = kwm::make_mpi_communicator(&argc, &argv);
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s KILL_RANK KILL_STEP\n", argv[0]);
    return 2;
  }
  const int kill_rank = std::atoi(argv[1]);
  const int kill_step = std::atoi(argv[2]);
  kwm::KalmanLearnerConfig config;
  config.kind = kwm::KalmanLearnerKind::sensitivity_dekf;
  config.blocking = kwm::Blocking::per_unit;
  kwm::KalmanSequenceLearner learner(
      kwm::make_model(YAML::Load("{type: diagonal_stack, n_in: 0, n_out: 1, output_lags: 2, "
                                 "width: 4, states: 4, layers: 2, seed: 1}")),
      config, kwm::replicated_batch_sharding(*world));
  std::mt19937 rng(1);
  std::normal_distribution<double> normal;
  double x = 0.0;
  for (int t = 0; t < 200; ++t) {
    if (t == kill_step && world->rank() == kill_rank) std::raise(SIGKILL);
    learner.predict(Eigen::VectorXd());
    x = 0.9 * x + normal(rng);
    learner.observe(Eigen::VectorXd::Constant(1, x), true);
  }
  if (world->rank() == 0) std::printf("victim: completed 200 steps on %d ranks\n", world->size());
  return 0;
}
