// The rls-head step on the device: forward pass, innovation, pbar, statistics, Sherman-Morrison,
// Cholesky factor and solve queued on the forward pass's stream; one host wait for the loss and
// the flags; then the accepted head, information and pbar move.
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
#include "core/lm/cuda/rls_head_kernels.cuh"
#include "core/lm/cuda/transpose_kernels.cuh"

namespace kwm::lm::cuda {
namespace {

// The device copy of `start` after the config checks (they come first: nothing is uploaded for a
// config the step would refuse).
GptParameters<float> rls_head_fp32_start(const RlsHeadConfig& config,
                                         const GptParameters<double>& start) {
  config.validate();
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

RlsHeadCuda::RlsHeadCuda(const RlsHeadConfig& config, const GptParameters<double>& start)
    : config_(config), model_(rls_head_fp32_start(config, start)) {
  KWM_CUSOLVER_CHECK(cusolverDnCreate(&solver_));
  const DeviceLinear& head = model_.parameters().head();
  vocab_ = head.rows;
  features_ = head.cols;
  inputs_ = features_ + (head.bias != nullptr ? 1 : 0);
  const std::int64_t m = inputs_;
  std::vector<float> prior(as_size(m * m), 0.0f);
  for (std::int64_t i = 0; i < m; ++i)
    prior[as_size(i * m + i)] = static_cast<float>(1.0 / config_.initial_variance);
  information_.reserve(prior.size());
  KWM_CUDA_CHECK(cudaMemcpy(information_.data(), prior.data(), prior.size() * sizeof(float),
                            cudaMemcpyHostToDevice));
  updated_.reserve(prior.size());
  factor_.reserve(prior.size());
  cross_.reserve(as_size(m * vocab_));
  step_.reserve(as_size(m * vocab_));
  mean_probability_.reserve(as_size(vocab_));
  candidate_mean_.reserve(as_size(vocab_));
  sherman_morrison_.reserve(as_size(2 * vocab_ + m));
  status_.reserve(kStatusWords);
  int workspace = 0;
  KWM_CUSOLVER_CHECK(cusolverDnSpotrf_bufferSize(solver_, CUBLAS_FILL_MODE_LOWER,
                                                 static_cast<int>(m), factor_.data(),
                                                 static_cast<int>(m), &workspace));
  solver_workspace_.reserve(as_size(std::max(workspace, 1)));
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
}

RlsHeadCuda::~RlsHeadCuda() {
  if (solver_ != nullptr) cusolverDnDestroy(solver_);
}

void RlsHeadCuda::reserve(std::int64_t columns) {
  nll_.reserve(as_size(columns + 1));
  probability_sums_.reserve(as_size(vocab_ * kernels::probability_chunks(columns)));
  if (ones_.capacity() < as_size(columns)) {
    ones_.reserve(as_size(columns));  // cudaFree/cudaMalloc: the device is idle afterwards
    const std::vector<float> ones(as_size(columns), 1.0f);
    KWM_CUDA_CHECK(
        cudaMemcpy(ones_.data(), ones.data(), ones.size() * sizeof(float), cudaMemcpyHostToDevice));
    // A pageable cudaMemcpy may return before its DMA lands (the step's stream does not wait).
    KWM_CUDA_CHECK(cudaDeviceSynchronize());
  }
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
  // Innovation e = onehot - p over the logits (in place), the NLL in double.
  kernels::flag_nonfinite(pass.logits, vocab * n, status + kNonfiniteLogits, stream);
  kernels::softmax_innovation(pass.logits, pass.targets, nll_.data(), nll_.data() + n, vocab, n,
                              stream);
  const float* e = pass.logits;
  // pbar' and the Sherman-Morrison vectors of G' = diag(pbar' + delta) - pbar' pbar'^T.
  double* inverse_diagonal = sherman_morrison_.data();
  double* u = inverse_diagonal + vocab;
  double* scale = u + vocab;
  kernels::probability_row_sums(e, pass.targets, probability_sums_.data(), vocab, n, stream);
  kernels::mean_probability_update(
      probability_sums_.data(), mean_probability_.data(), candidate_mean_.data(), inverse_diagonal,
      u, vocab, n, has_mean_probability_, config_.probability_ema, config_.delta, stream);
  // A' = lambda A + sum [x; 1][x; 1]^T (+ (1 - lambda) I / v): the lower triangle is A'. A full
  // SGEMM rather than SSYRK, as in kwm_linearized_cuda (SSYRK ran far below SGEMM's rate).
  const float one = 1.0f, zero = 0.0f;
  const auto lambda = static_cast<float>(config_.forgetting);
  const float* x = pass.hidden;
  KWM_CUDA_CHECK(cudaMemcpyAsync(updated_.data(), information_.data(),
                                 as_size(m * m) * sizeof(float), cudaMemcpyDeviceToDevice, stream));
  KWM_CUBLAS_CHECK(cuda_detail::gemm(blas, CUBLAS_OP_N, CUBLAS_OP_T, d, d, n, &one, x, d, x, d,
                                     &lambda, updated_.data(), m));
  const bool bias = m > d;
  if (bias) {
    KWM_CUBLAS_CHECK(cublasSgemv_64(blas, CUBLAS_OP_N, d, n, &one, x, d, ones_.data(), 1, &lambda,
                                    updated_.data() + d, m));
    float* corner = updated_.data() + d * m + d;
    KWM_CUBLAS_CHECK(cublasSscal_64(blas, 1, &lambda, corner, 1));
    kernels::add_diagonal(corner, static_cast<float>(n), 1, m, stream);
  }
  if (config_.forgetting < 1.0) {
    kernels::add_diagonal(updated_.data(),
                          static_cast<float>((1.0 - config_.forgetting) / config_.initial_variance),
                          m, m, stream);
  }
  // C = D^T = [x; 1] e^T (m x vocab), then every row of it gets G'^-1 (a column of D).
  KWM_CUBLAS_CHECK(cuda_detail::gemm(blas, CUBLAS_OP_N, CUBLAS_OP_T, d, vocab, n, &one, x, d, e,
                                     vocab, &zero, cross_.data(), m));
  if (bias) {
    KWM_CUBLAS_CHECK(cublasSgemv_64(blas, CUBLAS_OP_N, vocab, n, &one, e, vocab, ones_.data(), 1,
                                    &zero, cross_.data() + d, m));
  }
  kernels::apply_mean_field_inverse(cross_.data(), m, vocab, m, candidate_mean_.data(),
                                    inverse_diagonal, u, scale, stream);
  kernels::flag_nonfinite(updated_.data(), m * m, status + kNonfiniteStatistics, stream);
  kernels::flag_nonfinite(cross_.data(), m * vocab, status + kNonfiniteStatistics, stream);
  // A' = F F^T, S = A'^-1 C.
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
  // The one host wait: the loss and every flag.
  std::vector<int> flags(kStatusWords, 0);
  double total = 0.0;
  KWM_CUDA_CHECK(cudaMemcpyAsync(flags.data(), status, flags.size() * sizeof(int),
                                 cudaMemcpyDeviceToHost, stream));
  KWM_CUDA_CHECK(
      cudaMemcpyAsync(&total, nll_.data() + n, sizeof(double), cudaMemcpyDeviceToHost, stream));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (flags[kNonfiniteLogits] != 0 || !std::isfinite(total)) {
    report.nll_before = std::numeric_limits<double>::quiet_NaN();
    report.skipped = true;
    ++skips_;
    return report;
  }
  report.nll_before = total / static_cast<double>(n);
  const bool statistics_ok = flags[kNonfiniteStatistics] == 0;
  bool applied = statistics_ok && flags[kFactorInfo] == 0 && flags[kNonfiniteStep] == 0 &&
                 flags[kSolveInfo] == 0;
  if (statistics_ok && flags[kFactorInfo] > 0) {
    KWM_CUDA_CHECK(cudaMemsetAsync(status + kNonfiniteStep, 0, sizeof(int), stream));
    applied = retry_with_jitter(stream, status + kNonfiniteStep, status + kFactorInfo,
                                status + kSolveInfo);
  }
  if (!applied) {  // head, information and pbar stay as they were
    report.skipped = true;
    ++skips_;
    return report;
  }
  apply(blas);
  ++steps_;
  return report;
}

// The escalating jitter of shared_row_information's jittered_llt (j = initial_relative *
// trace(A')/m * growth^k), one host wait per attempt: a rare path, the prior keeps A' positive
// definite unless the statistics are degenerate. A success keeps the jitter in A'.
bool RlsHeadCuda::retry_with_jitter(cudaStream_t stream, int* flag, int* info, int* solve_info) {
  const std::int64_t m = inputs_, vocab = vocab_;
  const std::size_t bytes = as_size(m * m) * sizeof(float);
  std::vector<float> diagonal(as_size(m));
  KWM_CUDA_CHECK(cudaMemcpy2DAsync(diagonal.data(), sizeof(float), updated_.data(),
                                   as_size(m + 1) * sizeof(float), sizeof(float), as_size(m),
                                   cudaMemcpyDeviceToHost, stream));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
  double trace = 0.0;
  for (const float v : diagonal) trace += static_cast<double>(v);
  const double mean_diagonal = trace / static_cast<double>(m);
  double j = config_.jitter.initial_relative * (mean_diagonal > 0.0 ? mean_diagonal : 1.0);
  for (int k = 0; k < config_.jitter.max_retries; ++k, j *= config_.jitter.growth) {
    ++jitter_retries_;
    KWM_CUDA_CHECK(
        cudaMemcpyAsync(factor_.data(), updated_.data(), bytes, cudaMemcpyDeviceToDevice, stream));
    kernels::add_diagonal(factor_.data(), static_cast<float>(j), m, m, stream);
    KWM_CUSOLVER_CHECK(cusolverDnSpotrf(
        solver_, CUBLAS_FILL_MODE_LOWER, static_cast<int>(m), factor_.data(), static_cast<int>(m),
        solver_workspace_.data(), static_cast<int>(solver_workspace_.capacity()), info));
    int factored = 0;
    KWM_CUDA_CHECK(cudaMemcpyAsync(&factored, info, sizeof(int), cudaMemcpyDeviceToHost, stream));
    KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (factored != 0) continue;
    kernels::add_diagonal(updated_.data(), static_cast<float>(j), m, m, stream);  // A' solved
    KWM_CUDA_CHECK(cudaMemcpyAsync(step_.data(), cross_.data(), as_size(m * vocab) * sizeof(float),
                                   cudaMemcpyDeviceToDevice, stream));
    KWM_CUSOLVER_CHECK(cusolverDnSpotrs(
        solver_, CUBLAS_FILL_MODE_LOWER, static_cast<int>(m), static_cast<int>(vocab),
        factor_.data(), static_cast<int>(m), step_.data(), static_cast<int>(m), solve_info));
    kernels::flag_nonfinite(step_.data(), m * vocab, flag, stream);
    int bad = 0;
    KWM_CUDA_CHECK(cudaMemcpyAsync(&bad, flag, sizeof(int), cudaMemcpyDeviceToHost, stream));
    KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
    return bad == 0;
  }
  return false;
}

// [W b] += S^T, A <- A', pbar <- pbar' (queued; the buffers of the candidates become current).
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
  std::swap(information_, updated_);
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
  const GptParameters<float> values = rls_head_fp32_start(config_, parameters);
  KWM_CUDA_CHECK(cudaDeviceSynchronize());  // no queued step still reads the old values
  model_.parameters().upload(values);       // same config required; waits for the copy
}

void RlsHeadCuda::set_information(const Eigen::MatrixXd& information) {
  if (information.rows() != inputs_ || information.cols() != inputs_)
    throw std::invalid_argument("rls-head on CUDA: head.information is " +
                                std::to_string(information.rows()) + " x " +
                                std::to_string(information.cols()) + ", expected " +
                                std::to_string(inputs_) + " x " + std::to_string(inputs_));
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
