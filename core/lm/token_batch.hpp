// TokenBatch: B sequences of T token ids and their next-token targets.
#pragma once

#include <cstdint>
#include <vector>

namespace kwm::lm {

// Row-major: (sequence b, position t) -> b*T + t. Every activation matrix has column n = b*T + t.
struct TokenBatch {
  int batch = 0;
  int length = 0;
  std::vector<std::int32_t> inputs;   // size batch*length
  std::vector<std::int32_t> targets;  // size batch*length (next tokens)
  std::int64_t tokens() const { return static_cast<std::int64_t>(batch) * length; }
};

}  // namespace kwm::lm
