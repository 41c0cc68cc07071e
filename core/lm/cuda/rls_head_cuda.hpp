// RlsHeadCuda: one rls-head training step (core/lm/learners/rls_head_learner) on one CUDA device in
// fp32, single process. The body (embeddings, blocks, final layer norm) keeps its start values and
// only the head [W b] learns, on the features a = [final LN output; 1] (m = d + 1 rows; d without
// a head bias). GptForwardCuda gives a and the logits W a + b (its head SGEMM); then
//   e = onehot - p, per-token NLL in double            softmax_innovation (transpose_kernels)
//   pbar' = ema pbar + (1 - ema) mean_n p_n            row sums in double (rls_head_kernels)
//   A' = lambda A + (1 - lambda) I / v + sum a a^T     one SGEMM (x x^T) and an SGEMV for the 1 row
//   C = (G^-1 D)^T, D = e a^T                          SGEMM + SGEMV, then Sherman-Morrison with
//                                                      G = diag(pbar' + delta) - pbar' pbar'^T
//   A' = F F^T (cusolverDnSpotrf), S = A'^-1 C         (cusolverDnSpotrs; never an explicit
//                                                      inverse)
//   [W b] += S^T, A <- A', pbar <- pbar'               only when every check below passed
// Safeguards as the CPU learner: non-finite logits skip the step; non-finite statistics or step, or
// a factorisation that fails even after the escalating jitter (shared_row_information's
// jittered_llt schedule), skip it too, leaving head, information and pbar untouched. The
// information is fp32 with only its lower triangle kept; pbar is fp64 on the device.
#pragma once

#include <cusolverDn.h>

#include <cstdint>

#include "core/lm/cuda/device_buffer.hpp"
#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/learners/language_learner.hpp"
#include "core/lm/learners/rls_head_learner.hpp"

namespace kwm::lm::cuda {

class RlsHeadCuda {
 public:
  // start: the whole model (untied head, as RlsHeadLearner makes it), uploaded in fp32; the prior
  // information is I / initial_variance. Throws std::invalid_argument on a tied head or an invalid
  // config.
  RlsHeadCuda(const RlsHeadConfig& config, const GptParameters<double>& start);
  RlsHeadCuda(const RlsHeadCuda&) = delete;
  RlsHeadCuda& operator=(const RlsHeadCuda&) = delete;
  ~RlsHeadCuda();

  // Throws std::invalid_argument on a bad batch (validate_batch's and check_targets' messages).
  StepReport step(const TokenBatch& batch);

  // Host copies (a device wait each): the whole model, the head [W b] (vocab x m), the information
  // A (m x m, mirrored from the lower triangle) and pbar (vocab, empty before the first step).
  GptParameters<double> parameters();
  Eigen::MatrixXd head();
  Eigen::MatrixXd information();
  Eigen::VectorXd mean_probability();
  std::int64_t inputs() const { return inputs_; }  // m

  // Restoring a checkpoint (rls_head_cuda_learner): the whole model (same config, untied; rounded
  // to fp32), A (m x m, the lower triangle is read), pbar (vocab entries, or empty: none yet) and
  // the counters. A wrong shape throws std::invalid_argument.
  void set_parameters(const GptParameters<double>& parameters);
  void set_information(const Eigen::MatrixXd& information);
  void set_mean_probability(const Eigen::VectorXd& mean_probability);
  void set_counters(std::int64_t steps, std::int64_t skips, std::int64_t jitter_retries);
  std::int64_t steps() const { return steps_; }
  std::int64_t skips() const { return skips_; }
  std::int64_t jitter_retries() const { return jitter_retries_; }

 private:
  void reserve(std::int64_t columns);
  bool retry_with_jitter(cudaStream_t stream, int* flag, int* info, int* solve_info);
  void apply(cublasHandle_t blas);  // queued on the step's stream

  RlsHeadConfig config_;
  GptForwardCuda model_;
  cusolverDnHandle_t solver_ = nullptr;
  std::int64_t vocab_ = 0;
  std::int64_t features_ = 0;        // d
  std::int64_t inputs_ = 0;          // m: d (+ 1 with a head bias)
  DeviceBuffer<float> information_;  // A, m x m (lower triangle valid)
  DeviceBuffer<float> updated_;      // A' (the candidate)
  DeviceBuffer<float> factor_;       // its Cholesky factor
  DeviceBuffer<float> cross_;        // C = (G^-1 D)^T, m x vocab
  DeviceBuffer<float> step_;         // S = A'^-1 C, m x vocab
  DeviceBuffer<float> solver_workspace_;
  DeviceBuffer<float> ones_;               // N ones (row sums by SGEMV)
  DeviceBuffer<double> mean_probability_;  // pbar (vocab)
  DeviceBuffer<double> candidate_mean_;    // pbar'
  DeviceBuffer<double> sherman_morrison_;  // 1 / (pbar' + delta) and u (2 vocab), then m scales
  DeviceBuffer<double> probability_sums_;  // vocab x chunks partial sums of p
  DeviceBuffer<double> nll_;               // per-token NLL (N), then the total
  DeviceBuffer<int> status_;               // see step()
  bool has_mean_probability_ = false;
  std::int64_t steps_ = 0;
  std::int64_t skips_ = 0;
  std::int64_t jitter_retries_ = 0;
};

}  // namespace kwm::lm::cuda
