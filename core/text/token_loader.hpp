// TokenLoader: batches of B windows of T tokens (inputs) and the tokens one step later (targets)
// from one token stream, in a deterministic order that a cursor can save and restore, split
// across ranks so that R ranks together see exactly the batch that one rank would.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/lm/token_batch.hpp"

namespace YAML {
class Node;
}

namespace kwm::text {

enum class Sampling {
  sequential,  // windows k = 0, 1, 2, ... starting at token k*T; an epoch visits each once
  random,      // window starts drawn uniformly from [0, N-T-1] by a counter-based seeded RNG
};

struct LoaderOptions {
  int batch = 8;    // B: sequences per step over ALL ranks
  int length = 64;  // T: tokens per sequence (the model context)
  Sampling sampling = Sampling::sequential;
  std::uint64_t seed = 1;  // random sampling only
  int rank = 0;
  int ranks = 1;  // must divide batch
};

// Keys: batch, length, sampling (sequential | random), seed. Rank and ranks come from the launcher.
// Throws std::invalid_argument naming the key on an unknown key or a bad value.
LoaderOptions parse_loader_options(const YAML::Node& loader);

// Where the loader stands: every batch advances position by B windows; when fewer than B windows
// remain the epoch ends (the remainder is dropped) and position restarts at 0. `draws` counts the
// random offsets drawn so far (0 for sequential sampling).
struct LoaderCursor {
  std::int64_t epoch = 0;
  std::int64_t position = 0;
  std::uint64_t draws = 0;

  bool operator==(const LoaderCursor&) const = default;
};

class TokenLoader {
 public:
  // `source` names the stream in errors (e.g. the shard path). Throws std::invalid_argument when
  // the options are bad or the stream holds fewer than B windows of T+1 tokens.
  TokenLoader(std::vector<std::int32_t> tokens, const LoaderOptions& options,
              const std::string& source);

  // This rank's rows [rank*B/R, (rank+1)*B/R) of the next global batch; batch = B/R, length = T.
  lm::TokenBatch next();

  const LoaderCursor& cursor() const { return cursor_; }
  // Throws std::invalid_argument when the cursor does not fit this stream and batch size.
  void restore(const LoaderCursor& cursor);

  // W = floor((N - 1) / T) windows per epoch.
  std::int64_t windows_per_epoch() const { return windows_; }
  int local_batch() const { return options_.batch / options_.ranks; }

 private:
  std::size_t window_start(std::int64_t row) const;

  std::vector<std::int32_t> tokens_;
  LoaderOptions options_;
  std::string source_;
  std::int64_t windows_ = 0;
  LoaderCursor cursor_;
};

}  // namespace kwm::text
