// The kwm-linearized step on the device: statistics, information updates and Cholesky solves for
// every block queued on one stream, one host wait for the flags, then the accepted blocks move.
#include "core/lm/cuda/kwm_linearized_cuda.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "core/backend/cuda/blas_dispatch.hpp"
#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/host_checks.hpp"
#include "core/lm/cuda/transpose_kernels.cuh"

namespace kwm::lm::cuda {
namespace {

GptParameters<float> start_values(const GptParameters<double>& start) {
  if (start.config.tied_head)
    throw std::invalid_argument("kwm-linearized on CUDA: the model needs an untied head");
  return start.cast<float>();
}

}  // namespace

KwmLinearizedCuda::KwmLinearizedCuda(const KwmLinearizedConfig& config,
                                     const GptParameters<double>& start)
    : config_(config), model_(start_values(start)) {
  config_.validate();
  if (config_.noise_mode != LinearizedNoise::fixed)
    throw std::invalid_argument(
        "kwm-linearized on CUDA: learner.noise.mode must be fixed (adaptive noise runs on the "
        "CPU only)");
  KWM_CUSOLVER_CHECK(cusolverDnCreate(&solver_));
  KWM_CUSOLVER_CHECK(cusolverDnSetStream(solver_, model_.stream()));
  DeviceGptParameters& p = model_.parameters();
  const GptConfig& c = p.config();
  const auto prior = static_cast<float>(1.0 / config_.initial_variance);
  const auto fill = [&](DeviceBuffer<float>& buffer, const std::vector<float>& values) {
    buffer.reserve(values.size());
    KWM_CUDA_CHECK(cudaMemcpy(buffer.data(), values.data(), values.size() * sizeof(float),
                              cudaMemcpyHostToDevice));
  };
  const auto embedding = [&](const std::string& name, Kind kind, std::int64_t rows) {
    Block b;
    b.name = name;
    b.kind = kind;
    b.inputs = rows;
    fill(b.information, std::vector<float>(as_size(rows), prior));
    b.updated.reserve(as_size(rows));
    b.step.reserve(as_size(rows * c.d_model));
    blocks_.push_back(std::move(b));
  };
  const auto norm = [&](const std::string& name, const DeviceLayerNorm& n, std::size_t index) {
    Block b;
    b.name = name;
    b.kind = Kind::layer_norm;
    b.norm = n;
    b.site = index;
    b.inputs = c.d_model;
    std::vector<float> info(as_size(3 * c.d_model), 0.0f);
    for (int i = 0; i < c.d_model; ++i) info[as_size(i)] = info[as_size(2 * c.d_model + i)] = prior;
    fill(b.information, info);
    b.updated.reserve(info.size());
    b.step.reserve(as_size(2 * c.d_model));
    blocks_.push_back(std::move(b));
  };
  int workspace = 0;
  const auto linear = [&](const std::string& name, const DeviceLinear& layer, std::size_t site) {
    Block b;
    b.name = name;
    b.kind = Kind::linear;
    b.layer = layer;
    b.site = site;
    b.inputs = layer.cols + (layer.bias != nullptr ? 1 : 0);
    std::vector<float> info(as_size(b.inputs * b.inputs), 0.0f);
    for (std::int64_t i = 0; i < b.inputs; ++i) info[as_size(i * b.inputs + i)] = prior;
    fill(b.information, info);
    b.updated.reserve(info.size());
    b.factor.reserve(info.size());
    b.cross.reserve(as_size(b.inputs * layer.rows));
    b.step.reserve(as_size(b.inputs * layer.rows));
    int size = 0;
    KWM_CUSOLVER_CHECK(cusolverDnSpotrf_bufferSize(solver_, CUBLAS_FILL_MODE_LOWER,
                                                   static_cast<int>(b.inputs), b.factor.data(),
                                                   static_cast<int>(b.inputs), &size));
    workspace = std::max(workspace, size);
    blocks_.push_back(std::move(b));
  };
  embedding("token_embedding", Kind::token_embedding, c.vocab_size);
  embedding("position_embedding", Kind::position_embedding, c.context);
  for (int i = 0; i < c.n_layers; ++i) {
    const DeviceBlock& block = p.blocks()[as_size(i)];
    const std::string prefix = "blocks." + std::to_string(i) + ".";
    norm(prefix + "ln1", block.ln1, as_size(2 * i));
    linear(prefix + "qkv", block.qkv, linear_index(i, BlockLinear::qkv));
    linear(prefix + "attn_out", block.attn_out, linear_index(i, BlockLinear::attn_out));
    norm(prefix + "ln2", block.ln2, as_size(2 * i + 1));
    linear(prefix + "fc", block.fc, linear_index(i, BlockLinear::fc));
    linear(prefix + "proj", block.proj, linear_index(i, BlockLinear::proj));
  }
  norm("ln_f", p.ln_f(), as_size(2 * c.n_layers));
  linear("head", p.head(), head_linear_index(c));
  for (const Block& b : blocks_) names_.push_back(b.name);
  solver_workspace_.reserve(as_size(std::max(workspace, 1)));
  status_.reserve(4 * blocks_.size() + 1);
  counts_.reserve(as_size(c.vocab_size + c.context));
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
}

KwmLinearizedCuda::~KwmLinearizedCuda() {
  if (solver_ != nullptr) cusolverDnDestroy(solver_);
}

bool KwmLinearizedCuda::active(const Block& block) const {
  if (block.kind == Kind::token_embedding || block.kind == Kind::position_embedding)
    return config_.update_embeddings;
  if (block.kind == Kind::layer_norm) return config_.update_layer_norms;
  return true;
}

// L' and B = (1/r) a dz^T from the cached input and innovation, then F F^T = L' and B <- L'^-1 B.
void KwmLinearizedCuda::queue_linear(Block& b, int* flag, int* info, int* solve_info) {
  const cudaStream_t stream = model_.stream();
  const cublasHandle_t blas = model_.blas();
  const std::int64_t n = model_.columns(), d = b.layer.cols, rows = b.layer.rows, m = b.inputs;
  const bool bias = b.layer.bias != nullptr;
  const float* x = model_.input(b.site);
  const auto lambda = static_cast<float>(config_.forgetting);
  const auto inverse_r = static_cast<float>(1.0 / config_.noise_variance);
  const float zero = 0.0f;
  const std::size_t bytes = as_size(m * m) * sizeof(float);
  KWM_CUDA_CHECK(cudaMemcpyAsync(b.updated.data(), b.information.data(), bytes,
                                 cudaMemcpyDeviceToDevice, stream));
  // lambda L + (1/r) [x; 1][x; 1]^T; the lower triangle is the information. A full SGEMM rather
  // than SSYRK: on the H200 cuBLAS's SSYRK ran far below SGEMM's rate (bench/lm_cuda breakdown),
  // so twice the products still take less time.
  KWM_CUBLAS_CHECK(cuda_detail::gemm(blas, CUBLAS_OP_N, CUBLAS_OP_T, d, d, n, &inverse_r, x, d, x,
                                     d, &lambda, b.updated.data(), m));
  if (bias) {
    KWM_CUBLAS_CHECK(cublasSgemv_64(blas, CUBLAS_OP_N, d, n, &inverse_r, x, d, model_.ones(), 1,
                                    &lambda, b.updated.data() + d, m));
    float* corner = b.updated.data() + d * m + d;
    KWM_CUBLAS_CHECK(cublasSscal_64(blas, 1, &lambda, corner, 1));
    kernels::add_diagonal(
        corner, static_cast<float>(static_cast<double>(n) / config_.noise_variance), 1, m, stream);
  }
  if (config_.forgetting < 1.0) {
    kernels::add_diagonal(b.updated.data(),
                          static_cast<float>((1.0 - config_.forgetting) / config_.initial_variance),
                          m, m, stream);
  }
  // B = (1/r) [x; 1] dz^T (m x d_out) is the transpose of the pass's J_[W b]^T e = dz [x; 1]^T:
  // transposed and scaled (no second product over the N columns).
  DeviceGptParameters& p = model_.parameters();
  const float* weight_t = model_.transpose().data() + (b.layer.weight - p.data());
  KWM_CUBLAS_CHECK(cublasSgeam(blas, CUBLAS_OP_T, CUBLAS_OP_T, static_cast<int>(d),
                               static_cast<int>(rows), &inverse_r, weight_t, static_cast<int>(rows),
                               &zero, weight_t, static_cast<int>(rows), b.cross.data(),
                               static_cast<int>(m)));
  if (bias) {
    const float* bias_t = model_.transpose().data() + (b.layer.bias - p.data());
    KWM_CUBLAS_CHECK(cublasScopy_64(blas, rows, bias_t, 1, b.cross.data() + d, m));
    KWM_CUBLAS_CHECK(cublasSscal_64(blas, rows, &inverse_r, b.cross.data() + d, m));
  }
  kernels::flag_nonfinite(b.updated.data(), m * m, flag, stream);
  kernels::flag_nonfinite(b.cross.data(), m * rows, flag, stream);
  KWM_CUDA_CHECK(
      cudaMemcpyAsync(b.factor.data(), b.updated.data(), bytes, cudaMemcpyDeviceToDevice, stream));
  KWM_CUSOLVER_CHECK(cusolverDnSpotrf(
      solver_, CUBLAS_FILL_MODE_LOWER, static_cast<int>(m), b.factor.data(), static_cast<int>(m),
      solver_workspace_.data(), static_cast<int>(solver_workspace_.capacity()), info));
  KWM_CUDA_CHECK(cudaMemcpyAsync(b.step.data(), b.cross.data(), as_size(m * rows) * sizeof(float),
                                 cudaMemcpyDeviceToDevice, stream));
  KWM_CUSOLVER_CHECK(cusolverDnSpotrs(solver_, CUBLAS_FILL_MODE_LOWER, static_cast<int>(m),
                                      static_cast<int>(rows), b.factor.data(), static_cast<int>(m),
                                      b.step.data(), static_cast<int>(m), solve_info));
}

void KwmLinearizedCuda::queue_embedding(Block& b, int* flag) {
  DeviceGptParameters& p = model_.parameters();
  DeviceGptParameters& t = model_.transpose();
  const bool token = b.kind == Kind::token_embedding;
  const float* table = token ? p.token_embedding() : p.position_embedding();
  const float* cross = t.data() + (table - p.data());
  const float* counts = counts_.data() + (token ? 0 : p.config().vocab_size);
  kernels::embedding_information_step(
      table, b.information.data(), counts, cross, b.step.data(), b.updated.data(), b.inputs,
      p.config().d_model, static_cast<float>(config_.forgetting),
      static_cast<float>(1.0 / config_.initial_variance),
      static_cast<float>(config_.noise_variance), flag, model_.stream());
}

void KwmLinearizedCuda::queue_layer_norm(Block& b, int* flag, int* retries) {
  DeviceGptParameters& p = model_.parameters();
  DeviceGptParameters& t = model_.transpose();
  const std::int64_t d = b.inputs, n = model_.columns();
  const cudaStream_t stream = model_.stream();
  const DeviceLayerNormCache& cache = model_.layer_norm_cache(b.site);
  float* sums = moments_.data();
  float* square = moments_.data() + 2 * d;
  const float one = 1.0f, zero = 0.0f;
  kernels::square(cache.normalized, square, d * n, stream);
  KWM_CUBLAS_CHECK(cublasSgemv_64(model_.blas(), CUBLAS_OP_N, d, n, &one, square, d, model_.ones(),
                                  1, &zero, sums, 1));
  KWM_CUBLAS_CHECK(cublasSgemv_64(model_.blas(), CUBLAS_OP_N, d, n, &one, cache.normalized, d,
                                  model_.ones(), 1, &zero, sums + d, 1));
  const float* gain_t = t.data() + (b.norm.gain - p.data());
  const float* bias_t = t.data() + (b.norm.bias - p.data());
  kernels::layer_norm_information_step(
      b.norm.gain, b.norm.bias, b.information.data(), sums, sums + d, gain_t, bias_t,
      static_cast<float>(n), b.step.data(), b.step.data() + d, b.updated.data(), d,
      static_cast<float>(config_.forgetting), static_cast<float>(1.0 / config_.initial_variance),
      static_cast<float>(config_.noise_variance),
      static_cast<float>(config_.jitter.initial_relative),
      static_cast<float>(config_.jitter.growth), config_.jitter.max_retries, flag, retries, stream);
}

// The escalating jitter of shared_row_information's jittered_llt, one host wait per attempt (a
// rare path: the prior keeps L' positive definite unless the statistics are degenerate).
bool KwmLinearizedCuda::retry_with_jitter(Block& b, int* flag, int* info, int* solve_info) {
  const cudaStream_t stream = model_.stream();
  const std::int64_t m = b.inputs, rows = b.layer.rows;
  const std::size_t bytes = as_size(m * m) * sizeof(float);
  std::vector<float> diagonal(as_size(m));
  KWM_CUDA_CHECK(cudaMemcpy2DAsync(diagonal.data(), sizeof(float), b.updated.data(),
                                   as_size(m + 1) * sizeof(float), sizeof(float), as_size(m),
                                   cudaMemcpyDeviceToHost, stream));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
  double trace = 0.0;
  for (const float v : diagonal) trace += static_cast<double>(v);
  const double mean_diagonal = trace / static_cast<double>(m);
  double j = config_.jitter.initial_relative * (mean_diagonal > 0.0 ? mean_diagonal : 1.0);
  for (int k = 0; k < config_.jitter.max_retries; ++k, j *= config_.jitter.growth) {
    ++jitter_retries_;
    KWM_CUDA_CHECK(cudaMemcpyAsync(b.factor.data(), b.updated.data(), bytes,
                                   cudaMemcpyDeviceToDevice, stream));
    kernels::add_diagonal(b.factor.data(), static_cast<float>(j), m, m, stream);
    KWM_CUSOLVER_CHECK(cusolverDnSpotrf(
        solver_, CUBLAS_FILL_MODE_LOWER, static_cast<int>(m), b.factor.data(), static_cast<int>(m),
        solver_workspace_.data(), static_cast<int>(solver_workspace_.capacity()), info));
    int status = 0;
    KWM_CUDA_CHECK(cudaMemcpyAsync(&status, info, sizeof(int), cudaMemcpyDeviceToHost, stream));
    KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (status != 0) continue;
    kernels::add_diagonal(b.updated.data(), static_cast<float>(j), m, m, stream);  // L solved
    KWM_CUDA_CHECK(cudaMemcpyAsync(b.step.data(), b.cross.data(), as_size(m * rows) * sizeof(float),
                                   cudaMemcpyDeviceToDevice, stream));
    KWM_CUSOLVER_CHECK(cusolverDnSpotrs(
        solver_, CUBLAS_FILL_MODE_LOWER, static_cast<int>(m), static_cast<int>(rows),
        b.factor.data(), static_cast<int>(m), b.step.data(), static_cast<int>(m), solve_info));
    kernels::flag_nonfinite(b.step.data(), m * rows, flag, stream);
    int bad = 0;
    KWM_CUDA_CHECK(cudaMemcpyAsync(&bad, flag, sizeof(int), cudaMemcpyDeviceToHost, stream));
    KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
    return bad == 0;
  }
  return false;
}

void KwmLinearizedCuda::apply(Block& b) {
  DeviceGptParameters& p = model_.parameters();
  const cudaStream_t stream = model_.stream();
  const cublasHandle_t blas = model_.blas();
  const GptConfig& c = p.config();
  const float one = 1.0f;
  const auto copy = [stream](float* to, const float* from, std::int64_t count) {
    KWM_CUDA_CHECK(cudaMemcpyAsync(to, from, as_size(count) * sizeof(float),
                                   cudaMemcpyDeviceToDevice, stream));
  };
  switch (b.kind) {
    case Kind::token_embedding:
    case Kind::position_embedding: {
      const float* table =
          b.kind == Kind::token_embedding ? p.token_embedding() : p.position_embedding();
      copy(p.writable(table), b.step.data(), b.inputs * c.d_model);
      copy(b.information.data(), b.updated.data(), b.inputs);
      break;
    }
    case Kind::layer_norm:
      copy(p.writable(b.norm.gain), b.step.data(), b.inputs);
      copy(p.writable(b.norm.bias), b.step.data() + b.inputs, b.inputs);
      copy(b.information.data(), b.updated.data(), 3 * b.inputs);
      break;
    case Kind::linear: {
      const std::int64_t m = b.inputs, rows = b.layer.rows, d = b.layer.cols;
      float* weight = p.writable(b.layer.weight);
      // W += step^T (in place: C = A, op(A) = N), b += the step's last row.
      KWM_CUBLAS_CHECK(cublasSgeam(blas, CUBLAS_OP_N, CUBLAS_OP_T, static_cast<int>(rows),
                                   static_cast<int>(d), &one, weight, static_cast<int>(rows), &one,
                                   b.step.data(), static_cast<int>(m), weight,
                                   static_cast<int>(rows)));
      if (b.layer.bias != nullptr) {
        KWM_CUBLAS_CHECK(
            cublasSaxpy_64(blas, rows, &one, b.step.data() + d, m, p.writable(b.layer.bias), 1));
      }
      copy(b.information.data(), b.updated.data(), m * m);
      break;
    }
  }
}

StepReport KwmLinearizedCuda::step(const TokenBatch& batch) {
  StepReport report;
  report.tokens = batch.tokens();
  report.forward_passes = 1;
  const double total = model_.run(batch);
  if (!std::isfinite(total)) {
    report.nll_before = std::numeric_limits<double>::quiet_NaN();
    report.skipped = true;
    ++skips_;
    return report;
  }
  report.nll_before = total / static_cast<double>(batch.tokens());
  report.transposed_jacobian_passes = 1;
  const GptConfig& c = model_.parameters().config();
  const cudaStream_t stream = model_.stream();
  // Row counts of the one-hot inputs (host: the tokens are here anyway).
  std::vector<float> counts(as_size(c.vocab_size + c.context), 0.0f);
  for (const std::int32_t t : batch.inputs) counts[as_size(t)] += 1.0f;
  for (int t = 0; t < batch.length; ++t)
    counts[as_size(c.vocab_size + t)] = static_cast<float>(batch.batch);
  KWM_CUDA_CHECK(cudaMemcpyAsync(counts_.data(), counts.data(), counts.size() * sizeof(float),
                                 cudaMemcpyHostToDevice, stream));
  moments_.reserve(as_size(c.d_model * (model_.columns() + 2)));
  // Per block: statistics flag, potrf info, step flag, potrs info; then the LN jitter retries.
  const std::size_t count = blocks_.size();
  KWM_CUDA_CHECK(cudaMemsetAsync(status_.data(), 0, (4 * count + 1) * sizeof(int), stream));
  int* flags = status_.data();
  int* infos = flags + count;
  int* step_flags = flags + 2 * count;
  int* solve_infos = flags + 3 * count;
  for (std::size_t k = 0; k < count; ++k) {
    Block& b = blocks_[k];
    if (!active(b)) continue;
    switch (b.kind) {
      case Kind::token_embedding:
      case Kind::position_embedding:
        queue_embedding(b, flags + k);
        break;
      case Kind::layer_norm:
        queue_layer_norm(b, flags + k, flags + 4 * count);
        break;
      case Kind::linear:
        queue_linear(b, flags + k, infos + k, solve_infos + k);
        kernels::flag_nonfinite(b.step.data(), b.inputs * b.layer.rows, step_flags + k, stream);
        break;
    }
  }
  std::vector<int> status(4 * count + 1, 0);
  KWM_CUDA_CHECK(cudaMemcpyAsync(status.data(), status_.data(), status.size() * sizeof(int),
                                 cudaMemcpyDeviceToHost, stream));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
  jitter_retries_ += status[4 * count];
  for (std::size_t k = 0; k < count; ++k) {
    Block& b = blocks_[k];
    if (!active(b)) continue;
    const bool statistics_ok = status[k] == 0;
    bool applied = statistics_ok && status[count + k] == 0 && status[2 * count + k] == 0;
    if (b.kind == Kind::linear && statistics_ok && status[count + k] > 0) {
      KWM_CUDA_CHECK(cudaMemsetAsync(step_flags + k, 0, sizeof(int), stream));
      applied = retry_with_jitter(b, step_flags + k, infos + k, solve_infos + k);
    }
    if (applied) {
      apply(b);
    } else {
      ++block_skips_;
    }
  }
  ++steps_;
  return report;
}

GptParameters<double> KwmLinearizedCuda::parameters() {
  DeviceGptParameters& p = model_.parameters();
  Vector<float> flat(p.size());
  KWM_CUDA_CHECK(cudaMemcpyAsync(flat.data(), p.data(), as_size(p.size()) * sizeof(float),
                                 cudaMemcpyDeviceToHost, model_.stream()));
  KWM_CUDA_CHECK(cudaStreamSynchronize(model_.stream()));
  GptParameters<float> out = GptParameters<float>::zeros(p.config());
  out.unflatten(flat);
  return out.cast<double>();
}

std::pair<Eigen::Index, Eigen::Index> KwmLinearizedCuda::information_shape(
    std::size_t block) const {
  const Block& b = blocks_.at(block);
  const std::int64_t cols = b.kind == Kind::linear ? b.inputs : b.kind == Kind::layer_norm ? 3 : 1;
  return {b.inputs, cols};
}

Eigen::MatrixXd KwmLinearizedCuda::information(std::size_t block) {
  Block& b = blocks_.at(block);
  const auto [rows, cols] = information_shape(block);
  Matrix<float> out(rows, cols);
  KWM_CUDA_CHECK(cudaMemcpyAsync(out.data(), b.information.data(),
                                 as_size(rows * cols) * sizeof(float), cudaMemcpyDeviceToHost,
                                 model_.stream()));
  KWM_CUDA_CHECK(cudaStreamSynchronize(model_.stream()));
  Eigen::MatrixXd result = out.cast<double>();
  if (b.kind == Kind::linear)  // the lower triangle is the information; mirror it
    result = result.selfadjointView<Eigen::Lower>();
  return result;
}

void KwmLinearizedCuda::set_parameters(const GptParameters<double>& parameters) {
  model_.parameters().upload(start_values(parameters));
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
}

void KwmLinearizedCuda::set_information(std::size_t block, const Eigen::MatrixXd& information) {
  Block& b = blocks_.at(block);
  const auto [rows, cols] = information_shape(block);
  if (information.rows() != rows || information.cols() != cols)
    throw std::invalid_argument("kwm-linearized on CUDA: information of block " + b.name + " is " +
                                std::to_string(information.rows()) + " x " +
                                std::to_string(information.cols()) + ", expected " +
                                std::to_string(rows) + " x " + std::to_string(cols));
  // Column-major, as information() reads it back; a linear block's full symmetric matrix holds
  // the lower triangle the step uses.
  const Matrix<float> values = information.cast<float>();
  KWM_CUDA_CHECK(cudaMemcpyAsync(b.information.data(), values.data(),
                                 as_size(rows * cols) * sizeof(float), cudaMemcpyHostToDevice,
                                 model_.stream()));
  KWM_CUDA_CHECK(cudaStreamSynchronize(model_.stream()));
}

void KwmLinearizedCuda::set_counters(std::int64_t steps, std::int64_t skips,
                                     std::int64_t block_skips, std::int64_t jitter_retries) {
  steps_ = steps;
  skips_ = skips;
  block_skips_ = block_skips;
  jitter_retries_ = jitter_retries;
}

}  // namespace kwm::lm::cuda
