// The kwm-linearized step on the device: every block's raw statistics (on one rank beside the
// transposed pass, on a stream of their own), summed over ranks, then each owner's information
// updates and batched Cholesky factors; the cross terms and solves once the pass is done; one host
// wait for the flags, then the accepted blocks move and (several ranks) the parameters are shared.
#include "core/lm/cuda/kwm_linearized_cuda.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/host_checks.hpp"
#include "core/lm/cuda/jittered_solve.hpp"
#include "core/lm/cuda/transpose_kernels.cuh"
#include "core/lm/learners/block_placement.hpp"
#include "core/lm/learners/rank_collectives.hpp"

namespace kwm::lm::cuda {
namespace {

GptParameters<float> start_values(const GptParameters<double>& start) {
  if (start.config.tied_head)
    throw std::invalid_argument("kwm-linearized on CUDA: the model needs an untied head");
  return start.cast<float>();
}

// Status words per step (device ints, one copy to the host): per block a statistics flag and a
// step flag, the layer norms' jitter retries, a potrs info for the rare jitter path, then one potrf
// info per owned linear block in factor-batch order.
struct StatusLayout {
  std::size_t blocks;
  std::size_t flag(std::size_t k) const { return k; }
  std::size_t step_flag(std::size_t k) const { return blocks + k; }
  std::size_t norm_retries() const { return 2 * blocks; }
  std::size_t solve_info() const { return 2 * blocks + 1; }
  std::size_t factor_infos() const { return 2 * blocks + 2; }
};

// A device array of the batched calls' matrix pointers (synchronous: never inside a capture).
void upload_pointers(DeviceBuffer<float*>& to, const std::vector<float*>& from) {
  to.reserve(from.size());
  KWM_CUDA_CHECK(
      cudaMemcpy(to.data(), from.data(), from.size() * sizeof(float*), cudaMemcpyHostToDevice));
}

}  // namespace

KwmLinearizedCuda::KwmLinearizedCuda(const KwmLinearizedConfig& config,
                                     const GptParameters<double>& start, const LmCollectives& host)
    : config_(config), host_(host), model_(start_values(start)) {
  config_.validate();
  validate_collectives(host_, "kwm-linearized on CUDA");
  if (config_.noise_mode != LinearizedNoise::fixed)
    throw std::invalid_argument(
        "kwm-linearized on CUDA: learner.noise.mode must be fixed (adaptive noise runs on the "
        "CPU only)");
  KWM_CUSOLVER_CHECK(cusolverDnCreate(&solver_));
  KWM_CUSOLVER_CHECK(cusolverDnSetStream(solver_, model_.stream()));
  DeviceGptParameters& p = model_.parameters();
  const GptConfig& c = p.config();

  // The blocks in the CPU learner's order, with its placement costs (linearized_blocks.cpp).
  std::vector<double> costs;
  const auto add = [&](Block b, double cost) {
    blocks_.push_back(std::move(b));
    costs.push_back(cost);
  };
  const auto embedding = [&](const std::string& name, Kind kind, std::int64_t rows) {
    Block b;
    b.name = name;
    b.kind = kind;
    b.inputs = rows;
    add(std::move(b), static_cast<double>(rows * c.d_model));
  };
  const auto norm = [&](const std::string& name, const DeviceLayerNorm& n, std::size_t index) {
    Block b;
    b.name = name;
    b.kind = Kind::layer_norm;
    b.norm = n;
    b.site = index;
    b.inputs = c.d_model;
    add(std::move(b), 8.0 * static_cast<double>(c.d_model));
  };
  const auto linear = [&](const std::string& name, const DeviceLinear& layer, std::size_t site) {
    Block b;
    b.name = name;
    b.kind = Kind::linear;
    b.layer = layer;
    b.site = site;
    b.inputs = layer.cols + (layer.bias != nullptr ? 1 : 0);
    add(std::move(b), std::pow(static_cast<double>(b.inputs), 3.0));
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
  const std::vector<int> owners = place_blocks_lpt(costs, host_.ranks);

  // Every rank: the moments slices. Owners: the information (prior I / v) and work buffers.
  const auto prior = static_cast<float>(1.0 / config_.initial_variance);
  const auto fill = [&](DeviceBuffer<float>& buffer, const std::vector<float>& values) {
    buffer.reserve(values.size());
    KWM_CUDA_CHECK(cudaMemcpy(buffer.data(), values.data(), values.size() * sizeof(float),
                              cudaMemcpyHostToDevice));
  };
  std::vector<std::size_t> moments_offset;
  std::int64_t covered = 0;  // parameters inside some block (all of them; checked below)
  int workspace = 0;
  for (std::size_t k = 0; k < blocks_.size(); ++k) {
    Block& b = blocks_[k];
    b.owner = owners[k];
    moments_offset.push_back(statistics_size_);
    packed_offset_.push_back(packed_size_);
    const std::int64_t d = c.d_model;
    switch (b.kind) {
      case Kind::token_embedding:
      case Kind::position_embedding:
        statistics_size_ += as_size(b.inputs);
        packed_size_ += as_size(b.inputs);
        covered += b.inputs * d;
        if (!owned(b)) break;
        fill(b.information, std::vector<float>(as_size(b.inputs), prior));
        b.updated.reserve(as_size(b.inputs));
        b.step.reserve(as_size(b.inputs * d));
        break;
      case Kind::layer_norm: {
        statistics_size_ += as_size(2 * d);
        packed_size_ += as_size(2 * d);
        covered += 2 * d;
        if (!owned(b)) break;
        std::vector<float> info(as_size(3 * d), 0.0f);
        for (std::int64_t i = 0; i < d; ++i) info[as_size(i)] = info[as_size(2 * d + i)] = prior;
        fill(b.information, info);
        b.updated.reserve(info.size());
        b.step.reserve(as_size(2 * d));
        break;
      }
      case Kind::linear: {
        const std::int64_t m = b.inputs, rows = b.layer.rows;
        statistics_size_ += as_size(m * m);
        packed_size_ += as_size(m * (m + 1) / 2);  // S is symmetric: its lower triangle travels
        covered += rows * b.layer.cols + (b.layer.bias != nullptr ? rows : 0);
        if (!owned(b)) break;
        std::vector<float> info(as_size(m * m), 0.0f);
        for (std::int64_t i = 0; i < m; ++i) info[as_size(i * m + i)] = prior;
        fill(b.information, info);
        b.factor.reserve(info.size());
        b.cross.reserve(as_size(m * rows));
        b.step.reserve(as_size(m * rows));
        int size = 0;
        KWM_CUSOLVER_CHECK(cusolverDnSpotrf_bufferSize(solver_, CUBLAS_FILL_MODE_LOWER,
                                                       static_cast<int>(m), b.factor.data(),
                                                       static_cast<int>(m), &size));
        workspace = std::max(workspace, size);
        break;
      }
    }
  }
  if (covered != p.size())  // the parameter share below relies on every value having one owner
    throw std::logic_error("kwm-linearized on CUDA: the blocks cover " + std::to_string(covered) +
                           " of " + std::to_string(p.size()) + " parameters");
  parameter_count_ = as_size(p.size());
  statistics_.reserve(std::max<std::size_t>(statistics_size_, 1));
  for (std::size_t k = 0; k < blocks_.size(); ++k)
    blocks_[k].moments = statistics_.data() + moments_offset[k];
  for (const Block& b : blocks_) names_.push_back(b.name);
  solver_workspace_.reserve(as_size(std::max(workspace, 1)));
  widest_ = c.d_model;  // the widest statistics input (the layer norms read d)
  for (const Block& b : blocks_)
    if (b.kind == Kind::linear) widest_ = std::max<std::int64_t>(widest_, b.layer.cols);
  sums_.reserve(as_size(kernels::row_sums_workspace(widest_)));
  gram_.reserve(as_size(widest_ * widest_));
  plan_batches();
  if (host_.ranks > 1) {
    packed_.reserve(std::max<std::size_t>(packed_size_, 1));
    reduce_ = host_staged_all_reduce(host_, model_.stream());
  } else {  // the statistics and factors overlap the transposed pass (see the header)
    KWM_CUDA_CHECK(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking));
    KWM_CUBLAS_CHECK(cublasCreate(&side_blas_));
    KWM_CUBLAS_CHECK(cublasSetStream(side_blas_, side_));
    KWM_CUBLAS_CHECK(cublasSetMathMode(side_blas_, CUBLAS_DEFAULT_MATH));
    KWM_CUSOLVER_CHECK(cusolverDnSetStream(solver_, side_));
  }
  KWM_CUDA_CHECK(cudaEventCreateWithFlags(&forward_done_, cudaEventDisableTiming));
  KWM_CUDA_CHECK(cudaEventCreateWithFlags(&learner_done_, cudaEventDisableTiming));
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
}

KwmLinearizedCuda::~KwmLinearizedCuda() {
  set_phase_timing(false);
  if (forward_done_ != nullptr) cudaEventDestroy(forward_done_);
  if (learner_done_ != nullptr) cudaEventDestroy(learner_done_);
  if (side_blas_ != nullptr) cublasDestroy(side_blas_);
  if (side_ != nullptr) cudaStreamDestroy(side_);
  if (solver_ != nullptr) cusolverDnDestroy(solver_);
}

void KwmLinearizedCuda::set_phase_timing(bool on) {
  if (on == !marks_.empty()) return;
  if (!on) {
    for (cudaEvent_t e : marks_) cudaEventDestroy(e);
    marks_.clear();
    return;
  }
  marks_.assign(static_cast<std::size_t>(Mark::end) + 1, nullptr);
  for (cudaEvent_t& e : marks_) KWM_CUDA_CHECK(cudaEventCreate(&e));
}

void KwmLinearizedCuda::mark(Mark at, cudaStream_t stream) {
  if (!marks_.empty())
    KWM_CUDA_CHECK(cudaEventRecord(marks_[static_cast<std::size_t>(at)], stream));
}

// After the step's last host wait: every mark's time from the step's start.
void KwmLinearizedCuda::read_phases() {
  if (marks_.empty()) return;
  KWM_CUDA_CHECK(cudaEventSynchronize(marks_.back()));
  const auto at = [&](Mark m) {
    float ms = 0.0f;
    KWM_CUDA_CHECK(cudaEventElapsedTime(&ms, marks_.front(), marks_[static_cast<std::size_t>(m)]));
    return static_cast<double>(ms);
  };
  Phases p;
  p.overlapped = side_ != nullptr;
  p.forward_ms = at(Mark::forward);
  p.backward_ms = at(Mark::backward) - p.forward_ms;
  const double statistics_start = p.overlapped ? at(Mark::forward) : at(Mark::backward);
  p.statistics_ms = at(Mark::statistics) - statistics_start;
  p.factors_ms = at(Mark::factors) - at(Mark::statistics);
  p.solves_ms = at(Mark::solves) - std::max(at(Mark::backward), at(Mark::factors));
  p.apply_ms = at(Mark::end) - at(Mark::apply_begin);
  p.total_ms = at(Mark::end);
  phases_ = p;
}

// Owned linear blocks grouped by size for cusolverDnSpotrfBatched and by (size, outputs) for
// cublasStrsmBatched: a step then makes a handful of factor and solve calls instead of two per
// block (on the H200 one batched potrf of the 37 size-257 factors took 0.38 ms against 3.77 ms one
// by one; docs/gpu-lm.md).
void KwmLinearizedCuda::plan_batches() {
  std::map<std::int64_t, std::vector<std::size_t>> by_size;
  for (std::size_t k = 0; k < blocks_.size(); ++k) {
    const Block& b = blocks_[k];
    if (b.kind == Kind::linear && owned(b)) by_size[b.inputs].push_back(k);
  }
  const StatusLayout status{blocks_.size()};
  std::size_t infos = 0;
  for (const auto& [m, members] : by_size) infos += members.size();
  status_.reserve(status.factor_infos() + std::max<std::size_t>(infos, 1));
  std::size_t slot = status.factor_infos();
  for (const auto& [m, members] : by_size) {
    Batch batch;
    batch.m = m;
    batch.entries = members.size();
    batch.infos = status_.data() + slot;
    std::vector<float*> factors;
    for (const std::size_t k : members) {
      factors.push_back(blocks_[k].factor.data());
      blocks_[k].factor_info = status_.data() + slot++;  // contiguous per batch, as potrf writes
    }
    upload_pointers(batch.factors, factors);
    factor_batches_.push_back(std::move(batch));
  }
  plan_solves();
}

void KwmLinearizedCuda::set_solve_columns(std::int64_t width) {
  if (width < 0)
    throw std::invalid_argument("kwm-linearized on CUDA: the solve column width must be >= 0");
  solve_columns_ = width;
  plan_solves();  // here, not in the step: its copies must not run inside a graph's capture
}

// The solve batches for solve_columns_ (once per width): a block of d_out columns becomes
// whole chunks of `width` columns and a remainder; entries with the same (m, columns) share one
// cublasStrsmBatched pair. The steps are column-major m x d_out, so chunk c starts c * width * m
// floats in.
void KwmLinearizedCuda::plan_solves() {
  if (solve_plans_.count(solve_columns_) != 0) return;
  struct Entries {
    std::vector<float*> factors, steps;
  };
  std::map<std::pair<std::int64_t, std::int64_t>, Entries> by_shape;
  for (std::size_t k = 0; k < blocks_.size(); ++k) {
    Block& b = blocks_[k];
    if (b.kind != Kind::linear || !owned(b)) continue;
    const std::int64_t width = solve_columns_ > 0 ? solve_columns_ : b.layer.rows;
    for (std::int64_t first = 0; first < b.layer.rows; first += width) {
      const std::int64_t columns = std::min(width, b.layer.rows - first);
      Entries& e = by_shape[{b.inputs, columns}];
      e.factors.push_back(b.factor.data());
      e.steps.push_back(b.step.data() + first * b.inputs);
    }
  }
  std::vector<Batch>& plan = solve_plans_[solve_columns_];
  for (auto& [shape, e] : by_shape) {
    Batch batch;
    batch.m = shape.first;
    batch.rows = shape.second;
    batch.entries = e.factors.size();
    upload_pointers(batch.factors, e.factors);
    upload_pointers(batch.steps, e.steps);
    plan.push_back(std::move(batch));
  }
}

bool KwmLinearizedCuda::active(const Block& block) const {
  if (block.kind == Kind::token_embedding || block.kind == Kind::position_embedding)
    return config_.update_embeddings;
  if (block.kind == Kind::layer_norm) return config_.update_layer_norms;
  return true;
}

std::size_t KwmLinearizedCuda::reduced_floats() const {
  if (host_.ranks == 1) return 0;
  return packed_size_ + 2 * parameter_count_;
}

// This rank's raw statistics of one block into its moments slice (zeroed by queue_statistics).
void KwmLinearizedCuda::queue_moments(Block& b) {
  const cudaStream_t stream = learner_stream();
  const cublasHandle_t blas = learner_blas();
  const std::int64_t n = model_.columns();
  const float zero = 0.0f;
  if (b.kind == Kind::layer_norm) {  // sum xhat^2 and sum xhat per coordinate, one read of xhat
    const std::int64_t d = b.inputs;
    const DeviceLayerNormCache& cache = model_.layer_norm_cache(b.site);
    kernels::row_sums_and_squares(cache.normalized, d, n, b.moments + d, b.moments, sums_.data(),
                                  stream);
    return;
  }
  if (b.kind != Kind::linear) return;  // the embeddings' row counts come from the host
  // S = (1/r) [x; 1][x; 1]^T; its lower triangle is what the factor reads. A full SGEMM rather
  // than SSYRK: on the H200 cuBLAS's SSYRK ran far below SGEMM's rate (bench/lm_cuda breakdown),
  // so twice the products still take less time. The product goes to the aligned gram_ (leading
  // dimension d) and is copied into the moments (leading dimension m = d + 1): written there
  // directly, the odd leading dimension left cuBLAS only its slow unaligned kernels (an H100
  // profile, 2026-12-07: 144 us for d = 1024 in TF32, near three times the aligned product).
  const std::int64_t d = b.layer.cols, m = b.inputs;
  const float* x = model_.input(b.site);
  const auto inverse_r = static_cast<float>(1.0 / config_.noise_variance);
  // BF16: x rounded once into rounded_, the bias row summed from the same rounded values, and the
  // products (exact in fp32) summed in fp32 by cuBLAS: S is the Gram matrix of [rounded x; 1],
  // positive semi-definite as the fp32 one, at bfloat16's input precision.
  float* const bias_row = b.layer.bias != nullptr ? b.moments + d : nullptr;
  if (statistics_math_ == TensorMath::bf16) {
    kernels::round_bf16_row_sums(x, d, n, rounded_.data(), inverse_r, bias_row, m, sums_.data(),
                                 stream);
    KWM_CUBLAS_CHECK(cublasGemmEx_64(blas, CUBLAS_OP_N, CUBLAS_OP_T, d, d, n, &inverse_r,
                                     rounded_.data(), CUDA_R_16BF, d, rounded_.data(), CUDA_R_16BF,
                                     d, &zero, gram_.data(), CUDA_R_32F, d, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT));
  } else {
    KWM_CUBLAS_CHECK(gemm(blas, statistics_math_, CUBLAS_OP_N, CUBLAS_OP_T, d, d, n, &inverse_r, x,
                          d, x, d, &zero, gram_.data(), d));
    if (bias_row != nullptr)
      kernels::row_sums(x, d, n, inverse_r, false, bias_row, m, sums_.data(), stream);
  }
  KWM_CUDA_CHECK(cudaMemcpy2DAsync(b.moments, as_size(m) * sizeof(float), gram_.data(),
                                   as_size(d) * sizeof(float), as_size(d) * sizeof(float),
                                   as_size(d), cudaMemcpyDeviceToDevice, stream));
  if (bias_row != nullptr) {
    kernels::add_diagonal(b.moments + d * m + d,
                          static_cast<float>(static_cast<double>(n) / config_.noise_variance), 1, m,
                          stream);
  }
}

// Owner: L' = lambda L + (1 - lambda) L0 + S in place of the summed S, and the copy of L' that
// the batched potrf factors (learner stream: needs only the forward pass's statistics).
void KwmLinearizedCuda::queue_information(Block& b, int* flag) {
  const cudaStream_t stream = learner_stream();
  const cublasHandle_t blas = learner_blas();
  const std::int64_t m = b.inputs;
  const auto lambda = static_cast<float>(config_.forgetting);
  const float one = 1.0f;
  KWM_CUBLAS_CHECK(cublasSgeam(blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(m),
                               static_cast<int>(m), &lambda, b.information.data(),
                               static_cast<int>(m), &one, b.moments, static_cast<int>(m), b.moments,
                               static_cast<int>(m)));
  if (config_.forgetting < 1.0) {
    kernels::add_diagonal(b.moments,
                          static_cast<float>((1.0 - config_.forgetting) / config_.initial_variance),
                          m, m, stream);
  }
  kernels::flag_nonfinite(b.moments, m * m, flag, stream);
  KWM_CUDA_CHECK(cudaMemcpyAsync(b.factor.data(), b.moments, as_size(m * m) * sizeof(float),
                                 cudaMemcpyDeviceToDevice, stream));
}

// Owner: B = (1/r) a dz^T from the (summed) J^T e of the transposed pass (the pass's stream), into
// the cross terms and into the step the solves overwrite.
void KwmLinearizedCuda::queue_cross(Block& b, int* flag) {
  // B = (1/r) [x; 1] dz^T (m x d_out) is the transpose of the pass's J_[W b]^T e = dz [x; 1]^T:
  // transposed and scaled (no second product over the N columns).
  DeviceGptParameters& p = model_.parameters();
  const float* weight_t = model_.transpose().data() + (b.layer.weight - p.data());
  const float* bias_t =
      b.layer.bias != nullptr ? model_.transpose().data() + (b.layer.bias - p.data()) : nullptr;
  kernels::cross_terms(weight_t, bias_t, b.layer.rows, b.layer.cols,
                       static_cast<float>(1.0 / config_.noise_variance), b.cross.data(),
                       b.step.data(), flag, model_.stream());
}

void KwmLinearizedCuda::queue_embedding(Block& b, int* flag) {
  DeviceGptParameters& p = model_.parameters();
  DeviceGptParameters& t = model_.transpose();
  const float* table =
      b.kind == Kind::token_embedding ? p.token_embedding() : p.position_embedding();
  const float* cross = t.data() + (table - p.data());
  kernels::embedding_information_step(
      table, b.information.data(), b.moments, cross, b.step.data(), b.updated.data(), b.inputs,
      p.config().d_model, static_cast<float>(config_.forgetting),
      static_cast<float>(1.0 / config_.initial_variance),
      static_cast<float>(config_.noise_variance), flag, model_.stream());
}

void KwmLinearizedCuda::queue_layer_norm(Block& b, double tokens, int* flag, int* retries) {
  DeviceGptParameters& p = model_.parameters();
  DeviceGptParameters& t = model_.transpose();
  const std::int64_t d = b.inputs;
  const float* gain_t = t.data() + (b.norm.gain - p.data());
  const float* bias_t = t.data() + (b.norm.bias - p.data());
  kernels::layer_norm_information_step(
      b.norm.gain, b.norm.bias, b.information.data(), b.moments, b.moments + d, gain_t, bias_t,
      static_cast<float>(tokens), b.step.data(), b.step.data() + d, b.updated.data(), d,
      static_cast<float>(config_.forgetting), static_cast<float>(1.0 / config_.initial_variance),
      static_cast<float>(config_.noise_variance),
      static_cast<float>(config_.jitter.initial_relative),
      static_cast<float>(config_.jitter.growth), config_.jitter.max_retries, flag, retries,
      model_.stream());
}

// Every device pointer of the forward cache the statistics read, and the batch's width: a new
// value means a new graph (the pass re-slices its workspace per batch shape and may reallocate it).
StreamGraphs::Key KwmLinearizedCuda::statistics_key() const {
  StreamGraphs::Key key{1,
                        static_cast<std::uintptr_t>(model_.columns()),
                        reinterpret_cast<std::uintptr_t>(sums_.data()),
                        reinterpret_cast<std::uintptr_t>(gram_.data()),
                        reinterpret_cast<std::uintptr_t>(rounded_.data()),
                        static_cast<std::uintptr_t>(statistics_math_)};
  for (const Block& b : blocks_) {
    if (!active(b)) continue;
    if (b.kind == Kind::linear)
      key.push_back(reinterpret_cast<std::uintptr_t>(model_.input(b.site)));
    if (b.kind == Kind::layer_norm)
      key.push_back(reinterpret_cast<std::uintptr_t>(model_.layer_norm_cache(b.site).normalized));
  }
  return key;
}

// Learner stream: this rank's raw statistics, zeroing the status words first (one graph), then the
// embeddings' row counts from the host (outside it: a pageable copy cannot be captured).
void KwmLinearizedCuda::queue_statistics(const TokenBatch& batch) {
  const cudaStream_t stream = learner_stream();
  const GptConfig& c = model_.parameters().config();
  if (statistics_math_ == TensorMath::bf16)  // outside the graph: an allocation is not captured
    rounded_.reserve(as_size(widest_ * model_.columns()));
  graphs_.run(statistics_key(), stream, [&] {
    KWM_CUDA_CHECK(cudaMemsetAsync(status_.data(), 0, status_.capacity() * sizeof(int), stream));
    KWM_CUDA_CHECK(
        cudaMemsetAsync(statistics_.data(), 0, statistics_size_ * sizeof(float), stream));
    for (Block& b : blocks_)
      if (active(b)) queue_moments(b);
  });
  std::vector<float> counts(as_size(c.vocab_size + c.context), 0.0f);
  for (const std::int32_t t : batch.inputs) counts[as_size(t)] += 1.0f;
  for (int t = 0; t < batch.length; ++t)
    counts[as_size(c.vocab_size + t)] = static_cast<float>(batch.batch);
  for (Block& b : blocks_) {
    if (!active(b)) continue;
    if (b.kind == Kind::token_embedding || b.kind == Kind::position_embedding) {
      // Pageable source: the copy is staged before cudaMemcpyAsync returns, so `counts` may go.
      const float* rows = counts.data() + (b.kind == Kind::token_embedding ? 0 : c.vocab_size);
      KWM_CUDA_CHECK(cudaMemcpyAsync(b.moments, rows, as_size(b.inputs) * sizeof(float),
                                     cudaMemcpyHostToDevice, stream));
    }
  }
  mark(Mark::statistics, stream);
}

// Several ranks, on the pass's stream: every block's moments into packed_ (a linear block's S as
// its lower triangle, the only part L' and its factor read), or back after the sum. The linear
// blocks' S come back symmetric, so the moments hold what one rank's statistics would.
void KwmLinearizedCuda::move_packed_statistics(Packing direction) {
  const cudaStream_t stream = model_.stream();
  const bool pack = direction == Packing::pack;
  for (std::size_t k = 0; k < blocks_.size(); ++k) {
    Block& b = blocks_[k];
    float* packed = packed_.data() + packed_offset_[k];
    if (b.kind == Kind::linear) {
      if (pack)
        kernels::pack_lower(b.moments, b.inputs, packed, stream);
      else
        kernels::unpack_symmetric(packed, b.inputs, b.moments, stream);
      continue;
    }
    const std::size_t next = k + 1 < blocks_.size() ? packed_offset_[k + 1] : packed_size_;
    KWM_CUDA_CHECK(cudaMemcpyAsync(pack ? packed : b.moments, pack ? b.moments : packed,
                                   (next - packed_offset_[k]) * sizeof(float),
                                   cudaMemcpyDeviceToDevice, stream));
  }
}

// Learner stream, owners: every linear block's L' and its factor F F^T = L' (one batched potrf
// per size); then learner_done_ for the pass's stream to wait on.
void KwmLinearizedCuda::queue_information_and_factors() {
  const StatusLayout layout{blocks_.size()};
  graphs_.run({2}, learner_stream(), [&] {  // every pointer here is the learner's own, fixed
    for (std::size_t k = 0; k < blocks_.size(); ++k) {
      Block& b = blocks_[k];
      if (b.kind == Kind::linear && active(b) && owned(b))
        queue_information(b, status_.data() + layout.flag(k));
    }
    for (Batch& batch : factor_batches_) {
      KWM_CUSOLVER_CHECK(cusolverDnSpotrfBatched(
          solver_, CUBLAS_FILL_MODE_LOWER, static_cast<int>(batch.m), batch.factors.data(),
          static_cast<int>(batch.m), batch.infos, static_cast<int>(batch.entries)));
    }
  });
  mark(Mark::factors, learner_stream());
  KWM_CUDA_CHECK(cudaEventRecord(learner_done_, learner_stream()));
}

// The pass's stream: B <- F^-T F^-1 B (two triangular solves per shape), each in place on the
// block's step.
void KwmLinearizedCuda::queue_solves() {
  const cublasHandle_t blas = model_.blas();
  const float one = 1.0f;
  for (Batch& batch : solve_plans_.at(solve_columns_)) {
    for (const cublasOperation_t op : {CUBLAS_OP_N, CUBLAS_OP_T}) {
      KWM_CUBLAS_CHECK(cublasStrsmBatched(
          blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, op, CUBLAS_DIAG_NON_UNIT,
          static_cast<int>(batch.m), static_cast<int>(batch.rows), &one, batch.factors.data(),
          static_cast<int>(batch.m), batch.steps.data(), static_cast<int>(batch.m),
          static_cast<int>(batch.entries)));
    }
  }
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
      copy(b.information.data(), b.moments, m * m);
      break;
    }
  }
}

// Several ranks: every rank zeroes the parameters of the blocks it does not own, and one sum over
// ranks leaves the owners' values everywhere, exactly (each value has one nonzero term).
void KwmLinearizedCuda::share_parameters() {
  DeviceGptParameters& p = model_.parameters();
  const cudaStream_t stream = model_.stream();
  const auto zero = [&](const float* tensor, std::int64_t count) {
    KWM_CUDA_CHECK(cudaMemsetAsync(p.writable(tensor), 0, as_size(count) * sizeof(float), stream));
  };
  const std::int64_t d = p.config().d_model;
  for (const Block& b : blocks_) {
    if (owned(b)) continue;
    switch (b.kind) {
      case Kind::token_embedding:
        zero(p.token_embedding(), b.inputs * d);
        break;
      case Kind::position_embedding:
        zero(p.position_embedding(), b.inputs * d);
        break;
      case Kind::layer_norm:
        zero(b.norm.gain, d);
        zero(b.norm.bias, d);
        break;
      case Kind::linear:
        zero(b.layer.weight, b.layer.rows * b.layer.cols);
        if (b.layer.bias != nullptr) zero(b.layer.bias, b.layer.rows);
        break;
    }
  }
  reduce_(p.data(), as_size(p.size()));
}

StepReport KwmLinearizedCuda::step(const TokenBatch& batch) {
  StepReport report;
  report.tokens = batch.tokens();
  report.forward_passes = 1;
  const cudaStream_t stream = model_.stream();
  mark(Mark::begin, stream);
  // One rank: the statistics and factors start on the learner stream as soon as the forward
  // cache is queued, beside the transposed pass (speculatively: a skipped step discards them).
  const double total = model_.run(batch, [&] {
    mark(Mark::forward, stream);
    if (side_ == nullptr) return;
    KWM_CUDA_CHECK(cudaEventRecord(forward_done_, stream));
    KWM_CUDA_CHECK(cudaStreamWaitEvent(side_, forward_done_, 0));
    queue_statistics(batch);
    queue_information_and_factors();
  });
  mark(Mark::backward, stream);
  // One host sum decides the skip on every rank and gives the token count the layer norms use.
  double shared[2] = {std::isfinite(total) ? 0.0 : 1.0, static_cast<double>(batch.tokens())};
  sum_over_ranks(host_, shared, 2);
  if (shared[0] > 0.0) {
    // The next pass must not overwrite the forward cache the learner stream may still read.
    if (side_ != nullptr) KWM_CUDA_CHECK(cudaStreamWaitEvent(stream, learner_done_, 0));
    report.nll_before = std::numeric_limits<double>::quiet_NaN();
    report.skipped = true;
    ++skips_;
    return report;
  }
  report.nll_before = total / static_cast<double>(batch.tokens());
  report.transposed_jacobian_passes = 1;

  if (side_ == nullptr) {  // several ranks: statistics, their sums (with J^T e), L' and factors
    queue_statistics(batch);
    move_packed_statistics(Packing::pack);
    reduce_(packed_.data(), packed_size_);
    move_packed_statistics(Packing::unpack);
    reduce_(model_.transpose().data(), as_size(model_.parameters().size()));
    queue_information_and_factors();
  }
  KWM_CUDA_CHECK(cudaStreamWaitEvent(stream, learner_done_, 0));

  // Owners: the cross terms and the diagonal blocks' candidates, then the batched solves (one
  // graph per token count, which the layer-norm kernels take by value).
  const std::size_t count = blocks_.size();
  const StatusLayout layout{count};
  int* status_device = status_.data();
  std::uintptr_t tokens_bits = 0;
  static_assert(sizeof(tokens_bits) >= sizeof(shared[1]));
  std::memcpy(&tokens_bits, &shared[1], sizeof(shared[1]));
  graphs_.run({3, tokens_bits, static_cast<std::uintptr_t>(solve_columns_)}, stream, [&] {
    for (std::size_t k = 0; k < count; ++k) {
      Block& b = blocks_[k];
      if (!active(b) || !owned(b)) continue;
      int* flag = status_device + layout.flag(k);
      switch (b.kind) {
        case Kind::token_embedding:
        case Kind::position_embedding:
          queue_embedding(b, flag);
          break;
        case Kind::layer_norm:
          queue_layer_norm(b, shared[1], flag, status_device + layout.norm_retries());
          break;
        case Kind::linear:
          queue_cross(b, flag);
          break;
      }
    }
    queue_solves();
    for (std::size_t k = 0; k < count; ++k) {
      Block& b = blocks_[k];
      if (b.kind == Kind::linear && owned(b))
        kernels::flag_nonfinite(b.step.data(), b.inputs * b.layer.rows,
                                status_device + layout.step_flag(k), stream);
    }
  });
  std::vector<int> status(status_.capacity(), 0);
  KWM_CUDA_CHECK(cudaMemcpyAsync(status.data(), status_device, status.size() * sizeof(int),
                                 cudaMemcpyDeviceToHost, stream));
  mark(Mark::solves, stream);
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
  mark(Mark::apply_begin, stream);

  // Owners decide, then move their blocks; refusals and retries are summed so all ranks count
  // alike. When every owned block moves (the usual case) the moves are one graph.
  std::vector<double> outcome(count + 1, 0.0);  // per block 1 = refused; then jitter retries
  std::vector<std::size_t> accepted;
  std::size_t candidates = 0;
  int retries = status[layout.norm_retries()];
  for (std::size_t k = 0; k < count; ++k) {
    Block& b = blocks_[k];
    if (!active(b) || !owned(b)) continue;
    const bool statistics_ok = status[layout.flag(k)] == 0;
    const int factor_info =
        b.kind == Kind::linear ? status[as_size(b.factor_info - status_device)] : 0;
    bool applied = statistics_ok && factor_info == 0 && status[layout.step_flag(k)] == 0;
    if (b.kind == Kind::linear && statistics_ok && factor_info > 0) {
      int* step_flag = status_device + layout.step_flag(k);
      // On the stream the retry runs on, so its flag kernel sees the zero.
      KWM_CUDA_CHECK(cudaMemsetAsync(step_flag, 0, sizeof(int), learner_stream()));
      // A success keeps the jitter in L' (b.moments).
      applied = solve_with_jitter(
          device_solver(solver_, learner_stream(), solver_workspace_), config_.jitter,
          {b.inputs, b.layer.rows, b.moments, b.cross.data(), b.factor.data(), b.step.data(),
           b.factor_info, status_device + layout.solve_info(), step_flag},
          retries);
    }
    ++candidates;
    if (applied) {
      accepted.push_back(k);
    } else {
      outcome[k] = 1.0;
    }
  }
  const auto apply_accepted = [&] {
    for (const std::size_t k : accepted) apply(blocks_[k]);
  };
  if (accepted.size() == candidates) {
    graphs_.run({4}, stream, apply_accepted);
  } else {
    apply_accepted();
  }
  outcome[count] = static_cast<double>(retries);
  sum_over_ranks(host_, outcome.data(), outcome.size());
  for (std::size_t k = 0; k < count; ++k)
    if (outcome[k] > 0.0) ++block_skips_;
  jitter_retries_ += static_cast<std::int64_t>(outcome[count]);
  if (host_.ranks > 1) share_parameters();
  mark(Mark::end, stream);
  read_phases();
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
  if (!owned(b))
    throw std::logic_error("kwm-linearized on CUDA: rank " + std::to_string(host_.rank) +
                           " does not own block " + b.name);
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
  if (!owned(b))
    throw std::logic_error("kwm-linearized on CUDA: rank " + std::to_string(host_.rank) +
                           " does not own block " + b.name);
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
