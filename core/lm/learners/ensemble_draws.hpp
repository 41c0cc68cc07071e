// The host-side arithmetic of the forward-only ensemble that the CPU learner (ensemble_learner)
// and the GPU one (core/lm/cuda/ensemble_cuda) share, so both draw the same numbers and make the
// same forecast: the members' random draws, the initial members, the forecast and the
// observations of an analysis.
#pragma once

#include <Eigen/Core>
#include <cstdint>

#include "core/lm/learners/ensemble_config.hpp"
#include "core/lm/learners/ensemble_random.hpp"

namespace kwm::lm {

// rows x members. Column j: normal_vector(stream_seed(seed, purpose, step, j), rows, std), member
// j's own stream, so drawing the columns on several threads (as here, for large draws) gives the
// same numbers. Antithetic: member 2k + 1 takes the negative of member 2k's draw (its own stream
// is not used), so every pair sums to zero exactly and the average over an even number of members
// is zero up to the rounding of the sum: the ensemble starts with its mean at the origin, and each
// pair's spread probes +d and -d (a central difference, as MeZO's two-point estimate). members must
// then be even.
Eigen::MatrixXd member_draws(std::uint64_t seed, RandomPurpose purpose, std::uint64_t step,
                             Eigen::Index rows, Eigen::Index members, double std,
                             bool antithetic = false);

// The initial members (dimension x members): origin + each member's initial deviation of std
// initial_std (mirrored pairs when config.antithetic).
Eigen::MatrixXd initial_members(const EnsembleConfig& config, std::uint64_t seed,
                                const Eigen::VectorXd& origin);

// The forecast before step `step` (1, 2, ...): inflation about the mean, then process noise of std
// process_noise_std(config, step) on every member, centered over the members when configured.
void forecast_members(Eigen::MatrixXd& members, const EnsembleConfig& config, std::uint64_t seed,
                      std::int64_t step);

// What an analysis assimilates, from the members' predictions (m x J): the noise per token
// (target_probability: R_n = r pbar_n (1 - pbar_n) + floor with pbar_n the members' mean;
// nll_residual: R_n = r) and the observations per member (1 or 0, plus eps_j ~ N(0, R) from the
// member's stream when perturb_observations).
struct EnsembleObservations {
  Eigen::VectorXd noise;
  Eigen::MatrixXd values;
};
EnsembleObservations ensemble_observations(const Eigen::MatrixXd& predictions,
                                           const EnsembleConfig& config, std::uint64_t seed,
                                           std::int64_t step);

}  // namespace kwm::lm
