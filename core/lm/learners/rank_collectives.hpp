// Thin wrappers over LmCollectives: empty functions mean one process, where every collective is
// the identity. Learners call these instead of the std::function members directly.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

#include "core/lm/learners/language_learner.hpp"

namespace kwm::lm {

// Throws std::invalid_argument when the rank layout is inconsistent or a multi-rank run lacks a
// collective (a learner would otherwise silently train on one rank's data only).
inline void validate_collectives(const LmCollectives& c, const std::string& learner) {
  if (c.ranks < 1 || c.rank < 0 || c.rank >= c.ranks)
    throw std::invalid_argument(learner + ": collectives need 0 <= rank < ranks; got rank " +
                                std::to_string(c.rank) + " of " + std::to_string(c.ranks));
  if (c.ranks > 1 && (!c.all_reduce_sum || !c.broadcast || !c.any))
    throw std::invalid_argument(learner + ": " + std::to_string(c.ranks) +
                                " ranks need all_reduce_sum, broadcast and any collectives");
}

inline void sum_over_ranks(const LmCollectives& c, double* data, std::size_t count) {
  if (c.all_reduce_sum) c.all_reduce_sum(data, count);
}

inline void broadcast_from(const LmCollectives& c, double* data, std::size_t count, int root) {
  if (c.broadcast && c.ranks > 1) c.broadcast(data, count, root);
}

inline bool any_rank(const LmCollectives& c, bool flag) { return c.any ? c.any(flag) : flag; }

}  // namespace kwm::lm
