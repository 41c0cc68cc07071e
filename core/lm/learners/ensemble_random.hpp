// Counter-based random streams for the forward-only learners: every draw is a function of
// (learner seed, step, member, purpose), so any rank can regenerate any member's noise, a run
// on R ranks draws exactly what one rank draws, and a restart continues bit for bit.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <random>

#include "core/lm/learners/counter_random.hpp"

namespace kwm::lm {

enum class RandomPurpose : std::uint64_t {
  initial_deviation = 1,
  process_noise = 2,
  observation_perturbation = 3,
  mezo_direction = 4,
  random_subspace = 5,
  lora_adapter = 6,
};

inline std::uint64_t stream_seed(std::uint64_t seed, RandomPurpose purpose, std::uint64_t step,
                                 std::uint64_t member) {
  std::uint64_t s = splitmix64(seed ^ splitmix64(static_cast<std::uint64_t>(purpose)));
  s = splitmix64(s ^ splitmix64(step + 0x632be59bd9b4e019ULL));
  return splitmix64(s ^ splitmix64(member + 0x85157af5ULL));
}

// n independent N(0, std^2) draws from the stream.
inline Eigen::VectorXd normal_vector(std::uint64_t stream, Eigen::Index n, double std = 1.0) {
  std::mt19937_64 engine(stream);
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::VectorXd v(n);
  for (Eigen::Index i = 0; i < n; ++i) v(i) = std * normal(engine);
  return v;
}

// n independent N(0, 1) draws, draw i = counter_normal(stream, i): the same numbers however the
// coordinates are split (MeZO's direction on the host and on a device).
inline Eigen::VectorXd counter_normal_vector(std::uint64_t stream, Eigen::Index n) {
  Eigen::VectorXd v(n);
  for (Eigen::Index i = 0; i < n; ++i) v(i) = counter_normal(stream, static_cast<std::uint64_t>(i));
  return v;
}

}  // namespace kwm::lm
