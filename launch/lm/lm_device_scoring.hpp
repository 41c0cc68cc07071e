// Held-out scoring on a CUDA device: score_windows' windows and rank split (lm_evaluation.hpp),
// each batch of windows through lm::cuda::GptForwardCuda in fp32. Built only where kwm links
// kwm_lm_cuda (KWM_HAVE_LM_CUDA, launch/CMakeLists.txt).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/lm/gpt_parameters.hpp"
#include "distributed/communicator.hpp"
#include "launch/lm/lm_evaluation.hpp"

namespace kwm::lm::cuda {
class GptForwardCuda;
}

namespace kwm::launch {

// Up to this many windows, and about this many tokens, per device forward pass: 64 windows of
// 256 tokens; the logits (vocab x tokens, fp32) are the largest buffer, 1 GiB at vocab 16384.
inline constexpr int kDeviceWindowsPerBatch = 64;
inline constexpr std::int64_t kDeviceTokensPerBatch = 16384;

class DeviceScorer {
 public:
  DeviceScorer();  // touches no device: the forward pass is built at the first score
  DeviceScorer(const DeviceScorer&) = delete;
  DeviceScorer& operator=(const DeviceScorer&) = delete;
  ~DeviceScorer();

  // What score_tokens computes (same windows, same rank split, sums all-reduced through `world`),
  // with the parameters rounded to fp32 and each batch's loss from GptForwardCuda::total_nll
  // (per-token terms in double from fp32 logits). Uses the calling thread's current CUDA device:
  // in a multi-rank run the learner selects it before the first score. One GptForwardCuda (its
  // stream, cuBLAS handle and workspace) serves every call; each call uploads the parameters
  // once, and only on a rank that has windows to score.
  LmScore score(Communicator& world, const lm::GptParameters<double>& parameters,
                const std::vector<std::int32_t>& tokens, int length, std::int64_t max_tokens,
                double bytes_per_token);

 private:
  std::unique_ptr<lm::cuda::GptForwardCuda> forward_;
};

}  // namespace kwm::launch
