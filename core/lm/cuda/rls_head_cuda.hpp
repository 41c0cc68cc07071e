// RlsHeadCuda: one rls-head training step (core/lm/learners/rls_head_learner) on CUDA devices in
// fp32, one rank per GPU (or ranks sharing one through host-staged sums). The body (embeddings,
// blocks, final layer norm) keeps its start values and only the head [W b] learns, on the features
// a = [final LN output; 1] (m = d + 1 rows; d without a head bias). GptForwardCuda gives a and the
// logits W a + b (its head SGEMM); then
//   e = onehot - p, per-token NLL in double            softmax_innovation (transpose_kernels)
//   pbar' = ema pbar + (1 - ema) mean_n p_n            row sums in double (rls_head_kernels)
//   U = sum a a^T, D^T = a e^T                         SGEMMs (x x^T, x e^T), row_sums (1 row)
//   A' = lambda A + (1 - lambda) I / v + U             SGEAM, the prior on the diagonal
//   C = (G^-1 D)^T                                     Sherman-Morrison with
//                                                      G = diag(pbar' + delta) - pbar' pbar'^T
//   A' = F F^T (cusolverDnSpotrf), S = A'^-1 C         (cusolverDnSpotrs; never an explicit
//                                                      inverse)
//   [W b] += S^T, A <- A', pbar <- pbar'               only when every check below passed
// Several ranks (data parallel, as the CPU learner): each rank runs the pass on its own share of
// the batch; the skip flag, its token count and its sum_n p_n (vocab doubles) go through one host
// sum, its U and D^T through two device all-reduces; the head block's owner (place_blocks_lpt, as
// the CPU learner: rank 0) forms A', factors and solves; its outcome is summed over ranks; then
// every other rank zeroes its step S and one all-reduce hands every rank the owner's step exactly
// (x + 0 = x), which each applies to its identical head. pbar is replicated (every rank computes
// it from the same sums); only the owner keeps A.
// Safeguards as the CPU learner: non-finite logits skip the step; non-finite statistics or step, or
// a factorisation that fails even after the escalating jitter (shared_row_information's
// jittered_llt schedule), skip it too, leaving head, information and pbar untouched. The
// information is fp32 with only its lower triangle kept; pbar is fp64 on the device.
#pragma once

#include <cusolverDn.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "core/lm/cuda/device_all_reduce.hpp"
#include "core/lm/cuda/device_buffer.hpp"
#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/learners/language_learner.hpp"
#include "core/lm/learners/rls_head_learner.hpp"

namespace kwm::lm::cuda {

class RlsHeadCuda {
 public:
  // start: the whole model (untied head, as RlsHeadLearner makes it), identical on every rank,
  // uploaded in fp32; the prior information is I / initial_variance. `host`: the ranks and their
  // host collectives (one process by default); with several ranks the device buffers are summed
  // through the host until use_device_all_reduce() installs a device collective. The current CUDA
  // device must be this rank's (select_device). Throws std::invalid_argument on a tied head, an
  // invalid config or inconsistent collectives.
  RlsHeadCuda(const RlsHeadConfig& config, const GptParameters<double>& start,
              const LmCollectives& host = {});
  RlsHeadCuda(const RlsHeadCuda&) = delete;
  RlsHeadCuda& operator=(const RlsHeadCuda&) = delete;
  ~RlsHeadCuda();

  // One step on this rank's share of the batch; collective when there are several ranks. Throws
  // std::invalid_argument on a bad batch (validate_batch's and check_targets' messages).
  StepReport step(const TokenBatch& batch);

  // A device all-reduce ordered after stream() (NCCL), in place of the host-staged default.
  void use_device_all_reduce(DeviceAllReduce reduce) { reduce_ = std::move(reduce); }
  cudaStream_t stream() const { return model_.stream(); }
  // The rank that owns the head block (forms, factors and solves; holds A).
  int owner() const { return owner_; }
  bool owns() const { return owner_ == host_.rank; }
  // Floats all-reduced on the device per step with several ranks (0 on one): U (m x m), D^T and
  // the owner's step (m x vocab each). The host sum adds vocab + 2 and 2 doubles.
  std::size_t reduced_floats() const;

  // Host copies (a device wait each): the whole model, the head [W b] (vocab x m), the information
  // A (m x m, mirrored from the lower triangle; the owner only, std::logic_error elsewhere) and
  // pbar (vocab, empty before the first step).
  GptParameters<double> parameters();
  Eigen::MatrixXd head();
  Eigen::MatrixXd information();
  Eigen::VectorXd mean_probability();
  std::int64_t inputs() const { return inputs_; }  // m

  // Restoring a checkpoint (rls_head_cuda_learner): the whole model (same config, untied; rounded
  // to fp32), A (m x m, the lower triangle is read; the owner only, std::logic_error elsewhere),
  // pbar (vocab entries, or empty: none yet) and the counters. A wrong shape throws
  // std::invalid_argument.
  void set_parameters(const GptParameters<double>& parameters);
  void set_information(const Eigen::MatrixXd& information);
  void set_mean_probability(const Eigen::VectorXd& mean_probability);
  void set_counters(std::int64_t steps, std::int64_t skips, std::int64_t jitter_retries);
  std::int64_t steps() const { return steps_; }
  std::int64_t skips() const { return skips_; }
  std::int64_t jitter_retries() const { return jitter_retries_; }

 private:
  void reserve(std::int64_t columns);
  bool sum_batch_over_ranks(const GptForwardCuda::DeviceForward& pass, std::int64_t n,
                            StepReport& report, double& tokens);
  void queue_solve(cudaStream_t stream, cublasHandle_t blas, int* status);
  void apply(cublasHandle_t blas);  // queued on the step's stream

  RlsHeadConfig config_;
  LmCollectives host_;
  GptForwardCuda model_;
  DeviceAllReduce reduce_;
  int owner_ = 0;
  cusolverDnHandle_t solver_ = nullptr;
  std::int64_t vocab_ = 0;
  std::int64_t features_ = 0;        // d
  std::int64_t inputs_ = 0;          // m: d (+ 1 with a head bias)
  DeviceBuffer<float> information_;  // A, m x m (lower triangle valid); the owner only
  DeviceBuffer<float> updated_;      // U summed over ranks, then A' (the candidate) on the owner
  DeviceBuffer<float> factor_;       // A''s Cholesky factor; the owner only
  DeviceBuffer<float> cross_;        // D^T summed over ranks, then C = (G^-1 D)^T, m x vocab
  DeviceBuffer<float> step_;         // S = A'^-1 C, m x vocab (several ranks: shared by a sum)
  DeviceBuffer<float> solver_workspace_;
  DeviceBuffer<float> row_sums_workspace_;  // kernels::row_sums' partial sums
  DeviceBuffer<double> mean_probability_;   // pbar (vocab)
  DeviceBuffer<double> candidate_mean_;     // pbar' (several ranks: first this rank's sum_n p_n)
  DeviceBuffer<double> sherman_morrison_;   // 1 / (pbar' + delta) and u (2 vocab), then m scales
  DeviceBuffer<double> probability_sums_;   // vocab x chunks partial sums of p
  DeviceBuffer<double> nll_;                // per-token NLL (N), then the total
  DeviceBuffer<int> status_;                // see step()
  bool has_mean_probability_ = false;
  std::int64_t steps_ = 0;
  std::int64_t skips_ = 0;
  std::int64_t jitter_retries_ = 0;
};

}  // namespace kwm::lm::cuda
