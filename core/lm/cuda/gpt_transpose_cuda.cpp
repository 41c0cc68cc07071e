// The cached forward pass, the softmax innovation and the transposed-Jacobian pass on the device:
// core/lm's gpt_backward read kernel by kernel, with cuBLAS for every product.
#include "core/lm/cuda/gpt_transpose_cuda.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/host_checks.hpp"
#include "core/lm/cuda/kernels.cuh"
#include "core/lm/cuda/transpose_kernels.cuh"
#include "core/lm/gpt_forward.hpp"

namespace kwm::lm::cuda {
namespace {

Matrix<float> download(const float* p, std::int64_t rows, std::int64_t cols, cudaStream_t stream) {
  Matrix<float> out(rows, cols);
  KWM_CUDA_CHECK(cudaMemcpyAsync(out.data(), p, as_size(rows * cols) * sizeof(float),
                                 cudaMemcpyDeviceToHost, stream));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
  return out;
}

}  // namespace

GptTransposeCuda::GptTransposeCuda(const GptParameters<float>& parameters)
    : parameters_(parameters), transpose_(parameters.zeros_like()) {
  KWM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  KWM_CUBLAS_CHECK(cublasCreate(&blas_));
  KWM_CUBLAS_CHECK(cublasSetStream(blas_, stream_));
  // fp32 for every call on this handle (the learner's statistics included); TF32 is chosen per
  // GEMM of the pass when set_tensor_math asks for it (tensor_math.hpp says why).
  KWM_CUBLAS_CHECK(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));
}

GptTransposeCuda::~GptTransposeCuda() {
  if (blas_ != nullptr) cublasDestroy(blas_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

// Per block: normed1, context, normed2 (d each), hidden and pre-GELU (mlp each), qkv (3d), xhat1
// and xhat2 (d each), two 1/std rows; then normed_f, xhat_f, 1/std_f and the logits.
void GptTransposeCuda::reserve(int batch, int length) {
  const GptConfig& c = parameters_.config();
  const std::int64_t n = static_cast<std::int64_t>(batch) * length;
  const std::int64_t d = c.d_model, mlp = c.mlp_width(), layers = c.n_layers;
  const std::int64_t widest = std::max({mlp, 3 * d, static_cast<std::int64_t>(c.vocab_size)});
  const std::int64_t per_layer = 8 * d + 2 * mlp + 2;
  const std::int64_t scores = static_cast<std::int64_t>(batch) * c.n_heads * length * length;
  tokens_.reserve(as_size(n));
  targets_.reserve(as_size(n));
  csr_.reserve(as_size(3 * n + 1));  // rows, starts and columns of the token plan
  activations_.reserve(as_size((layers * per_layer + 2 * d + 1 + c.vocab_size) * n));
  innovations_.reserve(as_size(layers * (5 * d + mlp) * n));
  probabilities_.reserve(as_size(layers * scores));
  score_gradient_.reserve(as_size(scores));
  x_.reserve(as_size(d * n));
  g_.reserve(as_size(d * n));
  scratch_.reserve(as_size(widest * n));
  scratch2_.reserve(as_size(d * n));
  sums_.reserve(as_size(kernels::row_sums_workspace(widest)));
  nll_.reserve(as_size(n + 1));
  // Slice the workspace for this batch shape.
  const std::size_t sites = head_linear_index(c) + 1;
  input_.assign(sites, nullptr);
  innovation_.assign(sites, nullptr);
  pre_gelu_.assign(as_size(layers), nullptr);
  qkv_.assign(as_size(layers), nullptr);
  layer_probabilities_.assign(as_size(layers), nullptr);
  norms_.assign(as_size(2 * layers + 1), {});
  float* a = activations_.data();
  float* z = innovations_.data();
  const auto take = [n](float*& cursor, std::int64_t rows) {
    float* p = cursor;
    cursor += rows * n;
    return p;
  };
  for (int i = 0; i < c.n_layers; ++i) {
    const auto b = as_size(i);
    input_[linear_index(i, BlockLinear::qkv)] = take(a, d);
    input_[linear_index(i, BlockLinear::attn_out)] = take(a, d);
    input_[linear_index(i, BlockLinear::fc)] = take(a, d);
    input_[linear_index(i, BlockLinear::proj)] = take(a, mlp);
    pre_gelu_[b] = take(a, mlp);
    qkv_[b] = take(a, 3 * d);
    norms_[2 * b].normalized = take(a, d);
    norms_[2 * b + 1].normalized = take(a, d);
    norms_[2 * b].inverse_std = take(a, 1);
    norms_[2 * b + 1].inverse_std = take(a, 1);
    innovation_[linear_index(i, BlockLinear::qkv)] = take(z, 3 * d);
    innovation_[linear_index(i, BlockLinear::attn_out)] = take(z, d);
    innovation_[linear_index(i, BlockLinear::fc)] = take(z, mlp);
    innovation_[linear_index(i, BlockLinear::proj)] = take(z, d);
    layer_probabilities_[b] = probabilities_.data() + b * as_size(scores);
  }
  const std::size_t head = head_linear_index(c);
  input_[head] = take(a, d);
  norms_.back().normalized = take(a, d);
  norms_.back().inverse_std = take(a, 1);
  logits_ = take(a, c.vocab_size);
  innovation_[head] = logits_;
}

void GptTransposeCuda::linear_forward(const DeviceLinear& layer, const float* input, float* output,
                                      bool accumulate, bool bias) {
  const float one = 1.0f;
  const float beta = accumulate ? 1.0f : 0.0f;
  KWM_CUBLAS_CHECK(gemm(blas_, math_, CUBLAS_OP_N, CUBLAS_OP_N, layer.rows, columns_, layer.cols,
                        &one, layer.weight, layer.rows, input, layer.cols, &beta, output,
                        layer.rows));
  if (bias && layer.bias != nullptr)
    kernels::add_bias(output, layer.bias, layer.rows, columns_, stream_);
}

void GptTransposeCuda::attention_forward(const float* qkv, float* probabilities, float* context) {
  const GptConfig& c = parameters_.config();
  const std::int64_t d = c.d_model, hd = c.head_dim(), len = length_, heads = c.n_heads;
  const std::int64_t qkv_stride = len * 3 * d;
  const std::int64_t score_stride = heads * len * len;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const float one = 1.0f, zero = 0.0f;
  for (std::int64_t h = 0; h < heads; ++h) {
    // S^T = K^T Q / sqrt(hd): row = key, column = query.
    KWM_CUBLAS_CHECK(gemm_strided_batched(blas_, math_, CUBLAS_OP_T, CUBLAS_OP_N, len, len, hd,
                                          &scale, qkv + d + h * hd, 3 * d, qkv_stride, qkv + h * hd,
                                          3 * d, qkv_stride, &zero, probabilities + h * len * len,
                                          len, score_stride, batch_));
  }
  kernels::causal_softmax_columns(probabilities, len, batch_ * heads, stream_);
  for (std::int64_t h = 0; h < heads; ++h) {
    // context = V P^T.
    KWM_CUBLAS_CHECK(gemm_strided_batched(blas_, math_, CUBLAS_OP_N, CUBLAS_OP_N, hd, len, len,
                                          &one, qkv + 2 * d + h * hd, 3 * d, qkv_stride,
                                          probabilities + h * len * len, len, score_stride, &zero,
                                          context + h * hd, d, len * d, batch_));
  }
}

void GptTransposeCuda::forward(const TokenBatch& batch) {
  const GptConfig& c = parameters_.config();
  const std::int64_t n = columns_, d = c.d_model, mlp = c.mlp_width();
  const auto eps = static_cast<float>(c.layer_norm_eps);
  KWM_CUDA_CHECK(cudaMemcpyAsync(tokens_.data(), batch.inputs.data(), as_size(n) * 4,
                                 cudaMemcpyHostToDevice, stream_));
  KWM_CUDA_CHECK(cudaMemcpyAsync(targets_.data(), batch.targets.data(), as_size(n) * 4,
                                 cudaMemcpyHostToDevice, stream_));
  kernels::embed(parameters_.token_embedding(), parameters_.position_embedding(), tokens_.data(),
                 x_.data(), d, n, length_, c.vocab_size, c.context, stream_);
  for (int i = 0; i < c.n_layers; ++i) {
    const DeviceBlock& block = parameters_.blocks()[as_size(i)];
    const auto b = as_size(i);
    float* normed1 = input_[linear_index(i, BlockLinear::qkv)];
    float* context = input_[linear_index(i, BlockLinear::attn_out)];
    float* normed2 = input_[linear_index(i, BlockLinear::fc)];
    float* hidden = input_[linear_index(i, BlockLinear::proj)];
    kernels::layer_norm_cached(x_.data(), block.ln1.gain, block.ln1.bias, normed1,
                               norms_[2 * b].normalized, norms_[2 * b].inverse_std, d, n, eps,
                               stream_);
    linear_forward(block.qkv, normed1, qkv_[b], false);
    attention_forward(qkv_[b], layer_probabilities_[b], context);
    linear_forward(block.attn_out, context, x_.data(), true);
    kernels::layer_norm_cached(x_.data(), block.ln2.gain, block.ln2.bias, normed2,
                               norms_[2 * b + 1].normalized, norms_[2 * b + 1].inverse_std, d, n,
                               eps, stream_);
    // The pre-activation stays for gelu_transpose: pre += bias and hidden = gelu(pre) in one pass.
    linear_forward(block.fc, normed2, pre_gelu_[b], false, /*bias=*/false);
    kernels::bias_gelu(pre_gelu_[b], block.fc.bias, hidden, mlp, n, stream_);
    linear_forward(block.proj, hidden, x_.data(), true);
  }
  const std::size_t head = head_linear_index(c);
  kernels::layer_norm_cached(x_.data(), parameters_.ln_f().gain, parameters_.ln_f().bias,
                             input_[head], norms_.back().normalized, norms_.back().inverse_std, d,
                             n, eps, stream_);
  // The head's bias is added by the softmax kernel, in its first pass over each column.
  linear_forward(parameters_.head(), input_[head], logits_, false, /*bias=*/false);
  kernels::softmax_innovation(logits_, parameters_.head().bias, targets_.data(), nll_.data(),
                              nll_.data() + n, c.vocab_size, n, stream_);
}

void GptTransposeCuda::linear_transpose(const DeviceLinear& layer, const float* input,
                                        const float* dz, float* back, bool accumulate) {
  const float one = 1.0f;
  const float beta = accumulate ? 1.0f : 0.0f;
  // J_W^T e = dz a^T (added: a tied head shares the token embedding's slot), J_b^T e = dz 1.
  float* weight_t = transpose_.data() + (layer.weight - parameters_.data());
  KWM_CUBLAS_CHECK(gemm(blas_, math_, CUBLAS_OP_N, CUBLAS_OP_T, layer.rows, layer.cols, columns_,
                        &one, dz, layer.rows, input, layer.cols, &one, weight_t, layer.rows));
  if (layer.bias != nullptr) {
    float* bias_t = transpose_.data() + (layer.bias - parameters_.data());
    kernels::row_sums(dz, layer.rows, columns_, 1.0f, true, bias_t, 1, sums_.data(), stream_);
  }
  // J_a^T e = W^T dz.
  KWM_CUBLAS_CHECK(gemm(blas_, math_, CUBLAS_OP_T, CUBLAS_OP_N, layer.cols, columns_, layer.rows,
                        &one, layer.weight, layer.rows, dz, layer.rows, &beta, back, layer.cols));
}

void GptTransposeCuda::layer_norm_transpose(const DeviceLayerNorm& norm,
                                            const DeviceLayerNormCache& cache, const float* g,
                                            float* back, bool accumulate) {
  const std::int64_t d = parameters_.config().d_model;
  kernels::layer_norm_transpose(g, norm.gain, cache.normalized, cache.inverse_std, back,
                                scratch2_.data(), d, columns_, accumulate, stream_);
  float* gain_t = transpose_.data() + (norm.gain - parameters_.data());
  float* bias_t = transpose_.data() + (norm.bias - parameters_.data());
  kernels::row_sums(scratch2_.data(), d, columns_, 1.0f, true, gain_t, 1, sums_.data(), stream_);
  kernels::row_sums(g, d, columns_, 1.0f, true, bias_t, 1, sums_.data(), stream_);
}

void GptTransposeCuda::attention_transpose(const float* qkv, const float* probabilities,
                                           const float* g_context, float* g_qkv) {
  const GptConfig& c = parameters_.config();
  const std::int64_t d = c.d_model, hd = c.head_dim(), len = length_, heads = c.n_heads;
  const std::int64_t qkv_stride = len * 3 * d, context_stride = len * d;
  const std::int64_t score_stride = heads * len * len;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const float one = 1.0f, zero = 0.0f;
  float* ds = score_gradient_.data();
  for (std::int64_t h = 0; h < heads; ++h) {
    const float* p = probabilities + h * len * len;
    // dV = g_context P (P = (P^T)^T: query x key); dP^T = V^T g_context (key x query).
    KWM_CUBLAS_CHECK(gemm_strided_batched(blas_, math_, CUBLAS_OP_N, CUBLAS_OP_T, hd, len, len,
                                          &one, g_context + h * hd, d, context_stride, p, len,
                                          score_stride, &zero, g_qkv + 2 * d + h * hd, 3 * d,
                                          qkv_stride, batch_));
    KWM_CUBLAS_CHECK(gemm_strided_batched(blas_, math_, CUBLAS_OP_T, CUBLAS_OP_N, len, len, hd,
                                          &one, qkv + 2 * d + h * hd, 3 * d, qkv_stride,
                                          g_context + h * hd, d, context_stride, &zero,
                                          ds + h * len * len, len, score_stride, batch_));
  }
  kernels::causal_softmax_transpose(probabilities, ds, len, batch_ * heads, stream_);
  for (std::int64_t h = 0; h < heads; ++h) {
    const float* s = ds + h * len * len;
    // S = scale Q^T K: dQ = scale K dS^T (dS^T key x query), dK = scale Q dS.
    KWM_CUBLAS_CHECK(gemm_strided_batched(
        blas_, math_, CUBLAS_OP_N, CUBLAS_OP_N, hd, len, len, &scale, qkv + d + h * hd, 3 * d,
        qkv_stride, s, len, score_stride, &zero, g_qkv + h * hd, 3 * d, qkv_stride, batch_));
    KWM_CUBLAS_CHECK(gemm_strided_batched(
        blas_, math_, CUBLAS_OP_N, CUBLAS_OP_T, hd, len, len, &scale, qkv + h * hd, 3 * d,
        qkv_stride, s, len, score_stride, &zero, g_qkv + d + h * hd, 3 * d, qkv_stride, batch_));
  }
}

void GptTransposeCuda::embedding_transpose(const float* g) {
  const GptConfig& c = parameters_.config();
  const std::int64_t d = c.d_model;
  const std::int32_t* csr = csr_.data();
  float* token_t = transpose_.data() + (parameters_.token_embedding() - parameters_.data());
  float* position_t = transpose_.data() + (parameters_.position_embedding() - parameters_.data());
  kernels::token_embedding_transpose(g, csr, csr + unique_tokens_, csr + 2 * unique_tokens_ + 1,
                                     unique_tokens_, token_t, d, c.vocab_size, stream_);
  kernels::position_embedding_transpose(g, position_t, d, batch_, length_, c.context, stream_);
}

void GptTransposeCuda::backward() {
  const GptConfig& c = parameters_.config();
  const std::int64_t n = columns_, d = c.d_model, mlp = c.mlp_width();
  KWM_CUDA_CHECK(
      cudaMemsetAsync(transpose_.data(), 0, as_size(transpose_.size()) * sizeof(float), stream_));
  const std::size_t head = head_linear_index(c);
  float* scratch = scratch_.data();
  linear_transpose(parameters_.head(), input_[head], innovation_[head], scratch, false);
  layer_norm_transpose(parameters_.ln_f(), norms_.back(), scratch, g_.data(), false);
  for (int i = c.n_layers - 1; i >= 0; --i) {
    const DeviceBlock& block = parameters_.blocks()[as_size(i)];
    const auto b = as_size(i);
    const auto site = [i](BlockLinear which) { return linear_index(i, which); };
    // x += proj(gelu(fc(ln2 x))): the residual passes g through.
    float* dz_proj = innovation_[site(BlockLinear::proj)];
    KWM_CUDA_CHECK(cudaMemcpyAsync(dz_proj, g_.data(), as_size(d * n) * sizeof(float),
                                   cudaMemcpyDeviceToDevice, stream_));
    linear_transpose(block.proj, input_[site(BlockLinear::proj)], dz_proj, scratch, false);
    float* dz_fc = innovation_[site(BlockLinear::fc)];
    kernels::gelu_transpose(pre_gelu_[b], scratch, dz_fc, mlp * n, stream_);
    linear_transpose(block.fc, input_[site(BlockLinear::fc)], dz_fc, scratch, false);
    layer_norm_transpose(block.ln2, norms_[2 * b + 1], scratch, g_.data(), true);
    // x += attn_out(attention(qkv(ln1 x)))
    float* dz_out = innovation_[site(BlockLinear::attn_out)];
    KWM_CUDA_CHECK(cudaMemcpyAsync(dz_out, g_.data(), as_size(d * n) * sizeof(float),
                                   cudaMemcpyDeviceToDevice, stream_));
    linear_transpose(block.attn_out, input_[site(BlockLinear::attn_out)], dz_out, scratch, false);
    float* dz_qkv = innovation_[site(BlockLinear::qkv)];
    attention_transpose(qkv_[b], layer_probabilities_[b], scratch, dz_qkv);
    linear_transpose(block.qkv, input_[site(BlockLinear::qkv)], dz_qkv, scratch, false);
    layer_norm_transpose(block.ln1, norms_[2 * b], scratch, g_.data(), true);
  }
  embedding_transpose(g_.data());
}

double GptTransposeCuda::run(const TokenBatch& batch, const std::function<void()>& after_forward) {
  const GptConfig& c = parameters_.config();
  validate_batch(c, batch);
  check_targets(c, batch);
  batch_ = batch.batch;
  length_ = batch.length;
  columns_ = batch.tokens();
  reserve(batch_, length_);
  host_tokens_ = batch.inputs;
  // Columns grouped by token (increasing column order within a token): the scatter-add's plan.
  std::vector<std::int32_t> per_token(as_size(c.vocab_size) + 1, 0);
  for (const std::int32_t t : batch.inputs) ++per_token[as_size(t) + 1];
  std::vector<std::int32_t> rows, start{0};
  for (int v = 0; v < c.vocab_size; ++v) {
    if (per_token[as_size(v) + 1] == 0) continue;
    rows.push_back(v);
    start.push_back(start.back() + per_token[as_size(v) + 1]);
  }
  unique_tokens_ = static_cast<std::int32_t>(rows.size());
  std::vector<std::int32_t> first(as_size(c.vocab_size), 0);
  for (std::size_t u = 0; u < rows.size(); ++u) first[as_size(rows[u])] = start[u];
  std::vector<std::int32_t> plan(rows);
  plan.insert(plan.end(), start.begin(), start.end());
  plan.resize(plan.size() + as_size(columns_));
  std::int32_t* columns = plan.data() + rows.size() + start.size();
  for (std::int64_t k = 0; k < columns_; ++k) {
    columns[first[as_size(batch.inputs[as_size(k)])]++] = static_cast<std::int32_t>(k);
  }
  KWM_CUDA_CHECK(
      cudaMemcpyAsync(csr_.data(), plan.data(), plan.size() * 4, cudaMemcpyHostToDevice, stream_));
  forward(batch);
  if (after_forward) after_forward();
  backward();
  double total = 0.0;
  KWM_CUDA_CHECK(cudaMemcpyAsync(&total, nll_.data() + columns_, sizeof(double),
                                 cudaMemcpyDeviceToHost, stream_));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream_));  // also keeps `plan` alive until its copy ran
  return total;
}

Matrix<float> GptTransposeCuda::linear_output(std::size_t site) {
  const GptConfig& c = parameters_.config();
  const std::size_t head = head_linear_index(c);
  if (site > head) throw std::out_of_range("linear site " + std::to_string(site));
  const std::int64_t rows = site == head    ? c.vocab_size
                            : site % 4 == 0 ? 3 * c.d_model
                            : site % 4 == 2 ? c.mlp_width()
                                            : c.d_model;
  return download(innovation_[site], rows, columns_, stream_);
}

Matrix<float> GptTransposeCuda::linear_input(std::size_t site) {
  const GptConfig& c = parameters_.config();
  const std::size_t head = head_linear_index(c);
  if (site > head) throw std::out_of_range("linear site " + std::to_string(site));
  const std::int64_t rows = site != head && site % 4 == 3 ? c.mlp_width() : c.d_model;
  return download(input_[site], rows, columns_, stream_);
}

GptParameters<float> GptTransposeCuda::parameter_transpose() {
  GptParameters<float> out = GptParameters<float>::zeros(parameters_.config());
  Vector<float> flat(transpose_.size());
  KWM_CUDA_CHECK(cudaMemcpyAsync(flat.data(), transpose_.data(),
                                 as_size(transpose_.size()) * sizeof(float), cudaMemcpyDeviceToHost,
                                 stream_));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  out.unflatten(flat);
  return out;
}

}  // namespace kwm::lm::cuda
