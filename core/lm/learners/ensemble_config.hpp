// Configuration of the kwm-ensemble learner (ensemble Kalman inversion on a GPT).
#pragma once

#include <yaml-cpp/yaml.h>

#include "core/lm/learners/ensemble_subspace.hpp"

namespace kwm::lm {

// What each token contributes to the observation (one number per token, m = tokens):
//   target_probability  yhat_n = p(target_n), observed at 1, R_n = r pbar_n (1 - pbar_n) + floor:
//                       the Bernoulli variance of "the target occurs". Its likelihood is p, so
//                       the misfit's gradient at the mean is the NLL gradient and the
//                       Gauss-Newton matrix is that Bernoulli's Fisher information (Fisher
//                       scoring). From a uniform start its linearisation (dp = p dlogit, p ~ 1/V)
//                       asks for huge logit moves: measured worse than nll_residual.
//   nll_residual        yhat_n = sqrt(2 NLL_n), observed at 0, R_n = r (the default): the misfit
//                       0.5 sum r_n^2 / r is the total NLL / r itself.
enum class EnsembleObservation { target_probability, nll_residual };

struct EnsembleConfig {
  int members = 16;          // J >= 2
  SubspaceConfig subspace;   // where the members live
  double initial_std = 0.1;  // prior: theta_j = theta_0 + N(0, initial_std^2 I)
  EnsembleObservation observation = EnsembleObservation::nll_residual;
  double observation_noise = 0.3;  // r (see EnsembleObservation)
  double noise_floor = 1e-4;       // added to R_n for target_probability
  double inflation = 1.0;          // multiplicative, >= 1, applied before every forecast
  // std of a random walk added to every member every step: keeps the spread (and so the gain)
  // from collapsing as batches are assimilated, like process noise in a tracking filter
  double process_noise = 0.02;
  // How the process noise enters (forecast step 1, ensemble_learner.hpp):
  //   walk      every member gets its own draw: the mean takes a random walk of std
  //             q / sqrt(J) per step, which the analysis cannot undo in the directions the
  //             batches do not observe, so the mean drifts once the gain has shrunk
  //   centered  the draws minus their average over the members: the spread is refreshed
  //             exactly as by `walk` less one degree of freedom, the mean does not move (the
  //             default; measured in docs/lm-results.md)
  enum class ProcessNoiseMode { walk, centered } process_noise_mode = ProcessNoiseMode::centered;
  // q_t = process_noise / sqrt(1 + t / process_noise_halflife) when > 0 (t = step): an annealed
  // schedule, so the spread's refresh, and the mean's wander, shrink as the run goes on. 0: q
  // constant.
  double process_noise_halflife = 0.0;
  bool perturb_observations = false;  // true: eps_j ~ N(0, R) (stochastic EKI); false: eps_j = 0
  // true: members come in mirrored pairs, member 2k + 1's draws (initial deviation, process noise,
  // observation perturbation) the negatives of member 2k's (ensemble_draws.hpp): the ensemble
  // starts with its mean at the origin (up to rounding), and each pair predicts at +d and -d
  // about it (a central difference). Needs an even `members`.
  bool antithetic = false;

  // Throws std::invalid_argument naming the key (learner.members, ...).
  void validate() const;
};

// Keys: type (kwm-ensemble), members, subspace, initial_std, observation (target_probability |
// nll_residual), observation_noise, noise_floor, inflation, process_noise, process_noise_mode
// (walk | centered), process_noise_halflife, perturb_observations, antithetic.
// Unknown key -> std::invalid_argument naming it.
EnsembleConfig parse_ensemble_config(const YAML::Node& learner);

}  // namespace kwm::lm
