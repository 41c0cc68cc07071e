// Configuration of the Kalman sequence learners (the `learner:` section of a run config) and its
// YAML reader. Three learners share one implementation and differ only in covariance blocking.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "core/kalman/config.hpp"

namespace kwm {

enum class KalmanLearnerKind {
  sensitivity_dekf,  // blocks per parameter group or per unit (DEKF, section 2)
  dense_ekf,         // one dense block over every parameter (the global EKF; small models)
  diagonal_ekf,      // one diagonal block (the fully decoupled EKF; cheapest)
};

// How sensitivity-DEKF splits theta into covariance blocks.
enum class Blocking {
  per_group,  // one dense block per parameter group ("per layer")
  per_unit,   // one dense block per unit of every group ("per state", "per neuron", "per row")
};

struct KalmanLearnerConfig {
  KalmanLearnerKind kind = KalmanLearnerKind::sensitivity_dekf;
  Blocking blocking = Blocking::per_group;
  std::string backend = "cpu";     // "cpu" (Eigen fp64) or "cuda" (cuBLAS/cuSOLVER fp64)
  double initial_variance = 0.01;  // P_0 = v I over theta
  std::int64_t project_every = 1;  // stability projection every k updates; 0 disables
  KalmanConfig kalman;

  // Throws std::invalid_argument naming the key ("learner.initial_variance must be > 0; got 0").
  void validate() const;
};

std::string to_string(KalmanLearnerKind kind);
std::string to_string(Blocking blocking);

// True for the `learner.type` values this config covers.
bool is_kalman_learner(const std::string& type);

// Reads `learner:` (type, blocking, backend, initial_variance, project_every, predict{dynamics,
// process_noise, forgetting, trace_cap}, noise{mode, variance, ema, floor}, gating{mode,
// probability}, safeguards{joseph, eigen_floor, eigen_ceiling, clamp_every}, jitter{...}).
// Unknown keys and bad values throw std::invalid_argument naming "learner.<key>".
KalmanLearnerConfig kalman_learner_config(const YAML::Node& learner);
// The config as YAML, every key written out (for the resolved run config).
YAML::Node to_yaml(const KalmanLearnerConfig& config);

}  // namespace kwm
