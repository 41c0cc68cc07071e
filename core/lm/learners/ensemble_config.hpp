// Configuration of the kwm-ensemble learner (ensemble Kalman inversion on a GPT).
#pragma once

#include <yaml-cpp/yaml.h>

#include "core/lm/learners/ensemble_subspace.hpp"

namespace kwm::lm {

struct EnsembleConfig {
  int members = 16;                  // J >= 2
  SubspaceConfig subspace;           // where the members live
  double initial_std = 0.02;         // prior: theta_j = theta_0 + N(0, initial_std^2 I)
  double observation_noise = 1.0;    // r: R = r I on the per-token residuals
  double inflation = 1.0;            // multiplicative, >= 1, applied before every forecast
  double process_noise = 0.0;        // std of a random walk added to every member every step
  bool perturb_observations = true;  // eps_j ~ N(0, R) (stochastic EKI); false: eps_j = 0

  // Throws std::invalid_argument naming the key (learner.members, ...).
  void validate() const;
};

// Keys: type (kwm-ensemble), members, subspace, initial_std, observation_noise, inflation,
// process_noise, perturb_observations. Unknown key -> std::invalid_argument naming it.
EnsembleConfig parse_ensemble_config(const YAML::Node& learner);

}  // namespace kwm::lm
