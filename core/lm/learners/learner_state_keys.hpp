// Reading LearnerState back: every missing or mis-shaped key is an error that names it.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/lm/learners/language_learner.hpp"

namespace kwm::lm {

inline const Eigen::MatrixXd& state_tensor(const LearnerState& state, const std::string& key,
                                           Eigen::Index rows, Eigen::Index cols) {
  const auto it = state.tensors.find(key);
  if (it == state.tensors.end())
    throw std::invalid_argument("learner state: tensor '" + key + "' is missing");
  if (it->second.rows() != rows || it->second.cols() != cols)
    throw std::invalid_argument("learner state: tensor '" + key + "' is " +
                                std::to_string(it->second.rows()) + " x " +
                                std::to_string(it->second.cols()) + ", expected " +
                                std::to_string(rows) + " x " + std::to_string(cols));
  return it->second;
}

inline std::int64_t state_counter(const LearnerState& state, const std::string& key) {
  const auto it = state.counters.find(key);
  if (it == state.counters.end())
    throw std::invalid_argument("learner state: counter '" + key + "' is missing");
  return it->second;
}

}  // namespace kwm::lm
