// The members' random draws of the forward-only ensemble (initial deviations, process noise,
// perturbed observations), shared by the CPU learner (ensemble_learner) and the GPU one
// (core/lm/cuda/ensemble_cuda), so both draw the same numbers.
#pragma once

#include <Eigen/Core>
#include <cstdint>

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

}  // namespace kwm::lm
