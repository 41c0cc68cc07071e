// Two all-reduces: the per-rank sizes, then the zero-padded token ids.
#include "core/lm/learners/ensemble_batch.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include "core/lm/learners/rank_collectives.hpp"

namespace kwm::lm {

GatheredBatch gather_batch(const TokenBatch& local, const LmCollectives& collectives) {
  if (collectives.single_process()) return {local, 0};
  const auto ranks = static_cast<std::size_t>(collectives.ranks);
  const auto rank = static_cast<std::size_t>(collectives.rank);
  std::vector<double> sizes(2 * ranks, 0.0);
  sizes[2 * rank] = local.batch;
  sizes[2 * rank + 1] = local.length;
  sum_over_ranks(collectives, sizes.data(), sizes.size());

  GatheredBatch gathered;
  TokenBatch& global = gathered.batch;
  for (std::size_t r = ranks; r-- > 0;)
    if (sizes[2 * r] > 0) global.length = static_cast<int>(sizes[2 * r + 1]);
  std::size_t offset = 0;  // this rank's first token in the global batch
  for (std::size_t r = 0; r < ranks; ++r) {
    const int batch = static_cast<int>(sizes[2 * r]);
    const int length = static_cast<int>(sizes[2 * r + 1]);
    if (batch > 0 && length != global.length)
      throw std::invalid_argument("kwm-ensemble: ranks disagree on the sequence length (" +
                                  std::to_string(global.length) + " on one rank, " +
                                  std::to_string(length) + " on rank " + std::to_string(r) + ")");
    if (r < rank) offset += static_cast<std::size_t>(batch) * static_cast<std::size_t>(length);
    global.batch += batch;
  }
  const auto tokens = static_cast<std::size_t>(global.tokens());
  std::vector<double> ids(2 * tokens, 0.0);
  for (std::size_t i = 0; i < local.inputs.size(); ++i) {
    ids[offset + i] = local.inputs[i];
    ids[tokens + offset + i] = local.targets[i];
  }
  sum_over_ranks(collectives, ids.data(), ids.size());
  global.inputs.resize(tokens);
  global.targets.resize(tokens);
  for (std::size_t i = 0; i < tokens; ++i) {
    global.inputs[i] = static_cast<std::int32_t>(ids[i]);
    global.targets[i] = static_cast<std::int32_t>(ids[tokens + i]);
  }
  gathered.offset = static_cast<std::int64_t>(offset);
  return gathered;
}

}  // namespace kwm::lm
