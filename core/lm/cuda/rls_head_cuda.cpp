// The rls-head step on the device: forward pass, innovation, pbar, statistics, Sherman-Morrison,
// Cholesky factor and solve queued on the forward pass's stream; one host wait for the loss and
// the flags (several ranks: one more, for the host sum of the skip flag, tokens and sum p); then
// the accepted head, information and pbar move.
#include "core/lm/cuda/rls_head_cuda.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/backend/cuda/blas_dispatch.hpp"
#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/host_checks.hpp"
#include "core/lm/cuda/jittered_solve.hpp"
#include "core/lm/cuda/rls_head_kernels.cuh"
#include "core/lm/cuda/transpose_kernels.cuh"
#include "core/lm/learners/block_placement.hpp"
#include "core/lm/learners/rank_collectives.hpp"

namespace kwm::lm::cuda {
namespace {

// The device copy of `start` after the config and rank checks (they come first: nothing is
// uploaded for a config the step would refuse).
GptParameters<float> rls_head_fp32_start(const RlsHeadConfig& config, const LmCollectives& host,
                                         const GptParameters<double>& start) {
  config.validate();
  validate_collectives(host, "rls-head on CUDA");
  if (start.config.tied_head)
    throw std::invalid_argument("rls-head on CUDA: the model needs an untied head");
  return start.cast<float>();
}

// Status words of a step, one int each, cleared at its start.
enum RlsStatus : int {
  kNonfiniteLogits = 0,
  kNonfiniteStatistics = 1,  // A' or C
  kFactorInfo = 2,           // cusolverDnSpotrf's info
  kNonfiniteStep = 3,
  kSolveInfo = 4,  // cusolverDnSpotrs's info
  kStatusWords = 5,
};

}  // namespace

RlsHeadCuda::RlsHeadCuda(const RlsHeadConfig& config, const GptParameters<double>& start,
                         const LmCollectives& host)
    : config_(config), host_(host), model_(rls_head_fp32_start(config, host, start)) {
  KWM_CUSOLVER_CHECK(cusolverDnCreate(&solver_));
  const DeviceLinear& head = model_.parameters().head();
  vocab_ = head.rows;
  features_ = head.cols;
  inputs_ = features_ + (head.bias != nullptr ? 1 : 0);
  const std::int64_t m = inputs_;
  // The CPU learner's placement of its one block (rank 0 for any rank count).
  owner_ = place_blocks_lpt({std::pow(static_cast<double>(m), 3.0)}, host_.ranks)[0];
  updated_.reserve(as_size(m * m));
  cross_.reserve(as_size(m * vocab_));
  step_.reserve(as_size(m * vocab_));
  mean_probability_.reserve(as_size(vocab_));
  candidate_mean_.reserve(as_size(vocab_));
  sherman_morrison_.reserve(as_size(2 * vocab_ + m));
  status_.reserve(kStatusWords);
  // The bias row's sums (x 1 and e 1): one workspace for both, sized by the longer column (fixed by
  // the model, unlike the per-step buffers of reserve()).
  row_sums_workspace_.reserve(as_size(
      std::max(kernels::row_sums_workspace(features_), kernels::row_sums_workspace(vocab_))));
  if (owns()) {
    std::vector<float> prior(as_size(m * m), 0.0f);
    for (std::int64_t i = 0; i < m; ++i)
      prior[as_size(i * m + i)] = static_cast<float>(1.0 / config_.initial_variance);
    information_.reserve(prior.size());
    KWM_CUDA_CHECK(cudaMemcpy(information_.data(), prior.data(), prior.size() * sizeof(float),
                              cudaMemcpyHostToDevice));
    factor_.reserve(prior.size());
    int workspace = 0;
    KWM_CUSOLVER_CHECK(cusolverDnSpotrf_bufferSize(solver_, CUBLAS_FILL_MODE_LOWER,
                                                   static_cast<int>(m), factor_.data(),
                                                   static_cast<int>(m), &workspace));
    solver_workspace_.reserve(as_size(std::max(workspace, 1)));
  }
  if (host_.ranks > 1) reduce_ = host_staged_all_reduce(host_, model_.stream());
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
}

RlsHeadCuda::~RlsHeadCuda() {
  if (solver_ != nullptr) cusolverDnDestroy(solver_);
}

std::size_t RlsHeadCuda::reduced_floats() const {
  if (host_.ranks == 1) return 0;
  return as_size(inputs_ * inputs_ + 2 * inputs_ * vocab_);
}

void RlsHeadCuda::reserve(std::int64_t columns) {
  nll_.reserve(as_size(columns + 1));
  probability_sums_.reserve(as_size(vocab_ * kernels::probability_chunks(columns)));
}

StepReport RlsHeadCuda::step(const TokenBatch& batch) {
  StepReport report;
  report.tokens = batch.tokens();
  report.forward_passes = 1;
  const std::int64_t n = batch.tokens(), d = features_, m = inputs_, vocab = vocab_;
  const GptForwardCuda::DeviceForward pass = model_.device_forward(batch);  // validates the batch
  reserve(n);
  const cudaStream_t stream = pass.stream;
  const cublasHandle_t blas = pass.blas;
  KWM_CUSOLVER_CHECK(cusolverDnSetStream(solver_, stream));
  int* status = status_.data();
  KWM_CUDA_CHECK(cudaMemsetAsync(status, 0, kStatusWords * sizeof(int), stream));
  // Innovation e = onehot - p over the logits (in place), the NLL in double; sum_n p_n per row.
  kernels::flag_nonfinite(pass.logits, vocab * n, status + kNonfiniteLogits, stream);
  kernels::softmax_innovation(pass.logits, nullptr, pass.targets, nll_.data(), nll_.data() + n,
                              vocab, n, stream);
  const float* e = pass.logits;
  kernels::probability_row_sums(e, pass.targets, probability_sums_.data(), vocab, n, stream);
  // This rank's raw statistics: U = sum [x; 1][x; 1]^T (its lower triangle; the rest stays zero)
  // and D^T = [x; 1] e^T (m x vocab). A full SGEMM rather than SSYRK, as in kwm_linearized_cuda
  // (SSYRK ran far below SGEMM's rate).
  const float one = 1.0f, zero = 0.0f;
  const float* x = pass.hidden;
  KWM_CUDA_CHECK(cudaMemsetAsync(updated_.data(), 0, as_size(m * m) * sizeof(float), stream));
  KWM_CUBLAS_CHECK(cuda_detail::gemm(blas, CUBLAS_OP_N, CUBLAS_OP_T, d, d, n, &one, x, d, x, d,
                                     &zero, updated_.data(), m));
  KWM_CUBLAS_CHECK(cuda_detail::gemm(blas, CUBLAS_OP_N, CUBLAS_OP_T, d, vocab, n, &one, x, d, e,
                                     vocab, &zero, cross_.data(), m));
  if (m > d) {  // the bias input: the x 1 row, the token count in the corner, the e 1 row of D^T
    kernels::row_sums(x, d, n, 1.0f, false, updated_.data() + d, m, row_sums_workspace_.data(),
                      stream);
    kernels::add_diagonal(updated_.data() + d * m + d, static_cast<float>(n), 1, m, stream);
    kernels::row_sums(e, vocab, n, 1.0f, false, cross_.data() + d, m, row_sums_workspace_.data(),
                      stream);
  }
  double tokens = static_cast<double>(n);
  std::int64_t chunks = kernels::probability_chunks(n);
  if (host_.ranks > 1) {
    if (!sum_batch_over_ranks(pass, n, report, tokens)) return report;
    chunks = 1;  // probability_sums_ now holds the totals over ranks
  }
  // pbar' and the Sherman-Morrison vectors of G' = diag(pbar' + delta) - pbar' pbar'^T (every
  // rank: pbar is replicated).
  double* inverse_diagonal = sherman_morrison_.data();
  double* u = inverse_diagonal + vocab;
  kernels::mean_probability_update(probability_sums_.data(), chunks, mean_probability_.data(),
                                   candidate_mean_.data(), inverse_diagonal, u, vocab, tokens,
                                   has_mean_probability_, config_.probability_ema, config_.delta,
                                   stream);
  if (owns()) queue_solve(stream, blas, status);
  // The host wait: the loss and every flag.
  std::vector<int> flags(kStatusWords, 0);
  double total = 0.0;
  KWM_CUDA_CHECK(cudaMemcpyAsync(flags.data(), status, flags.size() * sizeof(int),
                                 cudaMemcpyDeviceToHost, stream));
  KWM_CUDA_CHECK(
      cudaMemcpyAsync(&total, nll_.data() + n, sizeof(double), cudaMemcpyDeviceToHost, stream));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (host_.ranks == 1) {  // several ranks decided this in sum_batch_over_ranks
    if (flags[kNonfiniteLogits] != 0 || !std::isfinite(total)) {
      report.nll_before = std::numeric_limits<double>::quiet_NaN();
      report.skipped = true;
      ++skips_;
      return report;
    }
    report.nll_before = total / static_cast<double>(n);
  }
  // The owner decides (with the jitter retries); the outcome is summed so every rank agrees.
  double outcome[2] = {0.0, 0.0};  // refused, jitter attempts
  if (owns()) {
    const bool statistics_ok = flags[kNonfiniteStatistics] == 0;
    bool applied = statistics_ok && flags[kFactorInfo] == 0 && flags[kNonfiniteStep] == 0 &&
                   flags[kSolveInfo] == 0;
    int attempts = 0;
    if (statistics_ok && flags[kFactorInfo] > 0) {
      KWM_CUDA_CHECK(cudaMemsetAsync(status + kNonfiniteStep, 0, sizeof(int), stream));
      // A success keeps the jitter in A'.
      applied = solve_with_jitter(
          device_solver(solver_, stream, solver_workspace_), config_.jitter,
          {inputs_, vocab_, updated_.data(), cross_.data(), factor_.data(), step_.data(),
           status + kFactorInfo, status + kSolveInfo, status + kNonfiniteStep},
          attempts);
    }
    outcome[0] = applied ? 0.0 : 1.0;
    outcome[1] = static_cast<double>(attempts);
  }
  sum_over_ranks(host_, outcome, 2);
  jitter_retries_ += static_cast<std::int64_t>(outcome[1]);
  if (outcome[0] > 0.0) {  // head, information and pbar stay as they were
    report.skipped = true;
    ++skips_;
    return report;
  }
  if (host_.ranks > 1) {  // the owner's step to every rank, exactly: x + 0 + ... = x
    if (!owns())
      KWM_CUDA_CHECK(cudaMemsetAsync(step_.data(), 0, as_size(m * vocab) * sizeof(float), stream));
    reduce_(step_.data(), as_size(m * vocab));
  }
  apply(blas);
  ++steps_;
  return report;
}

// Several ranks: this rank's sum_n p_n, its skip flag and token count through one host sum (in
// double), then U and D^T through the device all-reduce. False (and the report says skipped) when
// some rank's logits or loss are not finite: the CPU learner's any_rank check, before any sum.
bool RlsHeadCuda::sum_batch_over_ranks(const GptForwardCuda::DeviceForward& pass, std::int64_t n,
                                       StepReport& report, double& tokens) {
  const cudaStream_t stream = pass.stream;
  const std::int64_t m = inputs_, vocab = vocab_;
  // The row totals over the chunks (tokens 1, no previous pbar) into candidate_mean_, scratch in
  // the Sherman-Morrison vectors (both are written again before they are read).
  double* scratch = sherman_morrison_.data();
  kernels::mean_probability_update(probability_sums_.data(), kernels::probability_chunks(n),
                                   mean_probability_.data(), candidate_mean_.data(), scratch,
                                   scratch + vocab, vocab, 1.0, false, 0.0, config_.delta, stream);
  std::vector<double> shared(as_size(vocab + 2), 0.0);  // [nonfinite, tokens, sum_n p_n]
  int nonfinite = 0;
  double total = 0.0;
  KWM_CUDA_CHECK(cudaMemcpyAsync(&nonfinite, status_.data() + kNonfiniteLogits, sizeof(int),
                                 cudaMemcpyDeviceToHost, stream));
  KWM_CUDA_CHECK(
      cudaMemcpyAsync(&total, nll_.data() + n, sizeof(double), cudaMemcpyDeviceToHost, stream));
  KWM_CUDA_CHECK(cudaMemcpyAsync(shared.data() + 2, candidate_mean_.data(),
                                 as_size(vocab) * sizeof(double), cudaMemcpyDeviceToHost, stream));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
  const bool bad = nonfinite != 0 || !std::isfinite(total);
  report.nll_before =
      bad ? std::numeric_limits<double>::quiet_NaN() : total / static_cast<double>(n);
  shared[0] = bad ? 1.0 : 0.0;
  shared[1] = static_cast<double>(n);
  sum_over_ranks(host_, shared.data(), shared.size());
  if (shared[0] > 0.0) {
    report.skipped = true;
    ++skips_;
    return false;
  }
  tokens = shared[1];
  // Pageable source: the copy is staged before the call returns, so `shared` may go.
  KWM_CUDA_CHECK(cudaMemcpyAsync(probability_sums_.data(), shared.data() + 2,
                                 as_size(vocab) * sizeof(double), cudaMemcpyHostToDevice, stream));
  reduce_(updated_.data(), as_size(m * m));
  reduce_(cross_.data(), as_size(m * vocab));
  return true;
}

// The owner: A' = lambda A + (1 - lambda) I / v + U in place of the summed U, C = (G'^-1 D)^T in
// place of the summed D^T, then A' = F F^T and S = A'^-1 C, with their flags.
void RlsHeadCuda::queue_solve(cudaStream_t stream, cublasHandle_t blas, int* status) {
  const std::int64_t m = inputs_, vocab = vocab_;
  const float one = 1.0f;
  const auto lambda = static_cast<float>(config_.forgetting);
  KWM_CUBLAS_CHECK(cublasSgeam(blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(m),
                               static_cast<int>(m), &lambda, information_.data(),
                               static_cast<int>(m), &one, updated_.data(), static_cast<int>(m),
                               updated_.data(), static_cast<int>(m)));
  if (config_.forgetting < 1.0) {
    kernels::add_diagonal(updated_.data(),
                          static_cast<float>((1.0 - config_.forgetting) / config_.initial_variance),
                          m, m, stream);
  }
  double* inverse_diagonal = sherman_morrison_.data();
  double* u = inverse_diagonal + vocab;
  double* scale = u + vocab;
  kernels::apply_mean_field_inverse(cross_.data(), m, vocab, m, candidate_mean_.data(),
                                    inverse_diagonal, u, scale, stream);
  kernels::flag_nonfinite(updated_.data(), m * m, status + kNonfiniteStatistics, stream);
  kernels::flag_nonfinite(cross_.data(), m * vocab, status + kNonfiniteStatistics, stream);
  KWM_CUDA_CHECK(cudaMemcpyAsync(factor_.data(), updated_.data(), as_size(m * m) * sizeof(float),
                                 cudaMemcpyDeviceToDevice, stream));
  KWM_CUSOLVER_CHECK(cusolverDnSpotrf(solver_, CUBLAS_FILL_MODE_LOWER, static_cast<int>(m),
                                      factor_.data(), static_cast<int>(m), solver_workspace_.data(),
                                      static_cast<int>(solver_workspace_.capacity()),
                                      status + kFactorInfo));
  KWM_CUDA_CHECK(cudaMemcpyAsync(step_.data(), cross_.data(), as_size(m * vocab) * sizeof(float),
                                 cudaMemcpyDeviceToDevice, stream));
  KWM_CUSOLVER_CHECK(cusolverDnSpotrs(solver_, CUBLAS_FILL_MODE_LOWER, static_cast<int>(m),
                                      static_cast<int>(vocab), factor_.data(), static_cast<int>(m),
                                      step_.data(), static_cast<int>(m), status + kSolveInfo));
  kernels::flag_nonfinite(step_.data(), m * vocab, status + kNonfiniteStep, stream);
}

// [W b] += S^T, A <- A' (the owner), pbar <- pbar' (queued; the candidates' buffers become
// current).
void RlsHeadCuda::apply(cublasHandle_t blas) {
  DeviceGptParameters& p = model_.parameters();
  const DeviceLinear& head = p.head();
  const std::int64_t m = inputs_, d = features_, vocab = vocab_;
  const float one = 1.0f;
  float* weight = p.writable(head.weight);
  // W += S^T (in place: C = A with op(A) = N), b += S's last row.
  KWM_CUBLAS_CHECK(cublasSgeam(blas, CUBLAS_OP_N, CUBLAS_OP_T, static_cast<int>(vocab),
                               static_cast<int>(d), &one, weight, static_cast<int>(vocab), &one,
                               step_.data(), static_cast<int>(m), weight, static_cast<int>(vocab)));
  if (head.bias != nullptr) {
    KWM_CUBLAS_CHECK(
        cublasSaxpy_64(blas, vocab, &one, step_.data() + d, m, p.writable(head.bias), 1));
  }
  if (owns()) std::swap(information_, updated_);
  std::swap(mean_probability_, candidate_mean_);
  has_mean_probability_ = true;
}

GptParameters<double> RlsHeadCuda::parameters() {
  DeviceGptParameters& p = model_.parameters();
  Vector<float> flat(p.size());
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
  KWM_CUDA_CHECK(
      cudaMemcpy(flat.data(), p.data(), as_size(p.size()) * sizeof(float), cudaMemcpyDeviceToHost));
  GptParameters<float> out = GptParameters<float>::zeros(p.config());
  out.unflatten(flat);
  return out.cast<double>();
}

Eigen::MatrixXd RlsHeadCuda::head() {
  const DeviceLinear& h = model_.parameters().head();
  Matrix<float> out(vocab_, inputs_);  // column-major: W's columns, then b
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
  KWM_CUDA_CHECK(cudaMemcpy(out.data(), h.weight, as_size(vocab_ * features_) * sizeof(float),
                            cudaMemcpyDeviceToHost));
  if (h.bias != nullptr) {
    KWM_CUDA_CHECK(cudaMemcpy(out.data() + vocab_ * features_, h.bias,
                              as_size(vocab_) * sizeof(float), cudaMemcpyDeviceToHost));
  }
  return out.cast<double>();
}

Eigen::MatrixXd RlsHeadCuda::information() {
  if (!owns())
    throw std::logic_error("rls-head on CUDA: rank " + std::to_string(host_.rank) +
                           " does not own the head block (rank " + std::to_string(owner_) + ")");
  Matrix<float> out(inputs_, inputs_);
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
  KWM_CUDA_CHECK(cudaMemcpy(out.data(), information_.data(),
                            as_size(inputs_ * inputs_) * sizeof(float), cudaMemcpyDeviceToHost));
  Eigen::MatrixXd result = out.cast<double>();
  result = result.selfadjointView<Eigen::Lower>();  // the lower triangle is A; mirror it
  return result;
}

Eigen::VectorXd RlsHeadCuda::mean_probability() {
  if (!has_mean_probability_) return Eigen::VectorXd();
  Eigen::VectorXd out(vocab_);
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
  KWM_CUDA_CHECK(cudaMemcpy(out.data(), mean_probability_.data(), as_size(vocab_) * sizeof(double),
                            cudaMemcpyDeviceToHost));
  return out;
}

void RlsHeadCuda::set_parameters(const GptParameters<double>& parameters) {
  const GptParameters<float> values = rls_head_fp32_start(config_, host_, parameters);
  KWM_CUDA_CHECK(cudaDeviceSynchronize());  // no queued step still reads the old values
  model_.parameters().upload(values);       // same config required; waits for the copy
}

void RlsHeadCuda::set_information(const Eigen::MatrixXd& information) {
  if (information.rows() != inputs_ || information.cols() != inputs_)
    throw std::invalid_argument("rls-head on CUDA: head.information is " +
                                std::to_string(information.rows()) + " x " +
                                std::to_string(information.cols()) + ", expected " +
                                std::to_string(inputs_) + " x " + std::to_string(inputs_));
  if (!owns())
    throw std::logic_error("rls-head on CUDA: rank " + std::to_string(host_.rank) +
                           " does not own the head block (rank " + std::to_string(owner_) + ")");
  const Matrix<float> values = information.cast<float>();  // the lower triangle is what counts
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
  KWM_CUDA_CHECK(cudaMemcpy(information_.data(), values.data(),
                            as_size(inputs_ * inputs_) * sizeof(float), cudaMemcpyHostToDevice));
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
}

void RlsHeadCuda::set_mean_probability(const Eigen::VectorXd& mean_probability) {
  if (mean_probability.size() == 0) {
    has_mean_probability_ = false;
    return;
  }
  if (mean_probability.size() != vocab_)
    throw std::invalid_argument("rls-head on CUDA: head.mean_probability has " +
                                std::to_string(mean_probability.size()) + " entries, expected " +
                                std::to_string(vocab_) + " (or none)");
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
  KWM_CUDA_CHECK(cudaMemcpy(mean_probability_.data(), mean_probability.data(),
                            as_size(vocab_) * sizeof(double), cudaMemcpyHostToDevice));
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
  has_mean_probability_ = true;
}

void RlsHeadCuda::set_counters(std::int64_t steps, std::int64_t skips,
                               std::int64_t jitter_retries) {
  steps_ = steps;
  skips_ = skips;
  jitter_retries_ = jitter_retries;
}

}  // namespace kwm::lm::cuda
