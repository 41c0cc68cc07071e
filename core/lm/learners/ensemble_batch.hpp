// The observation of one kwm-ensemble step is the union of every rank's share of the batch:
// members are sharded across ranks, and every member must be scored on the same tokens for the
// ensemble statistics to mean anything. Token ids travel as doubles (exact below 2^53).
#pragma once

#include <cstdint>

#include "core/lm/learners/language_learner.hpp"
#include "core/lm/token_batch.hpp"

namespace kwm::lm {

struct GatheredBatch {
  TokenBatch batch;         // every rank's sequences, rank 0's first
  std::int64_t offset = 0;  // this rank's first token in `batch` (its share's columns start here)
};

// Rank 0's sequences first, then rank 1's, ... (one rank: `local` itself, offset 0). Throws
// std::invalid_argument when ranks disagree on the sequence length (every rank sees the same
// sizes, so every rank throws).
GatheredBatch gather_batch(const TokenBatch& local, const LmCollectives& collectives);

}  // namespace kwm::lm
