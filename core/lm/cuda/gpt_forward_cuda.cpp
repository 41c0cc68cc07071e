// The forward pass queued on the device: embed; per block x += attn_out(attention(qkv(ln1 x))),
// x += proj(gelu(fc(ln2 x))); logits = head(ln_f x). Residual adds are folded into the GEMMs
// (beta = 1 on the residual stream), biases added by a broadcast kernel after each GEMM.
#include "core/lm/cuda/gpt_forward_cuda.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/host_checks.hpp"
#include "core/lm/cuda/kernels.cuh"
#include "core/lm/gpt_forward.hpp"

namespace kwm::lm::cuda {
namespace {

std::size_t count(std::int64_t rows, std::int64_t columns) {
  return static_cast<std::size_t>(rows * columns);
}

}  // namespace

bool device_available() {
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device/driver" error
    return false;
  }
  return devices > 0;
}

GptForwardCuda::GptForwardCuda(const GptParameters<float>& parameters) : parameters_(parameters) {
  KWM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  KWM_CUBLAS_CHECK(cublasCreate(&blas_));
  KWM_CUBLAS_CHECK(cublasSetStream(blas_, stream_));
  // Plain fp32 products unless set_tensor_math asks for TF32, which tensor_math.hpp's GEMMs choose
  // per call; the tolerance against the fp64 reference assumes fp32.
  KWM_CUBLAS_CHECK(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));
}

GptForwardCuda::~GptForwardCuda() {
  if (blas_ != nullptr) cublasDestroy(blas_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

void GptForwardCuda::reserve(int batch, int length) {
  const GptConfig& c = parameters_.config();
  const std::int64_t n = static_cast<std::int64_t>(batch) * length;
  tokens_.reserve(count(n, 1));
  targets_.reserve(count(n, 1));
  x_.reserve(count(c.d_model, n));
  normed_.reserve(count(c.d_model, n));
  qkv_.reserve(count(3 * c.d_model, n));
  context_.reserve(count(c.d_model, n));
  hidden_.reserve(count(c.mlp_width(), n));
  scores_.reserve(count(static_cast<std::int64_t>(batch) * c.n_heads * length, length));
  logits_.reserve(count(c.vocab_size, n));
  nll_.reserve(count(n + 1, 1));
}

// output = W input + b; with accumulate, output += W input + b (the residual stream); with gelu,
// output = gelu(W input + b), the bias and the GELU in one pass.
void GptForwardCuda::linear(const DeviceLinear& layer, const float* input, float* output,
                            std::int64_t columns, bool accumulate, bool gelu) {
  const float one = 1.0f;
  const float beta = accumulate ? 1.0f : 0.0f;
  KWM_CUBLAS_CHECK(gemm(blas_, math_, CUBLAS_OP_N, CUBLAS_OP_N, layer.rows, columns, layer.cols,
                        &one, layer.weight, layer.rows, input, layer.cols, &beta, output,
                        layer.rows));
  if (gelu)
    kernels::bias_gelu(output, layer.bias, output, layer.rows, columns, stream_);
  else if (layer.bias != nullptr)
    kernels::add_bias(output, layer.bias, layer.rows, columns, stream_);
}

void GptForwardCuda::attention(const float* qkv, float* context, int batch, int length) {
  const GptConfig& c = parameters_.config();
  const std::int64_t d = c.d_model, hd = c.head_dim(), len = length, heads = c.n_heads;
  const std::int64_t qkv_stride = len * 3 * d;          // one sequence of qkv
  const std::int64_t score_stride = heads * len * len;  // scores of (b, h) at (b*H + h) len^2
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const float one = 1.0f, zero = 0.0f;
  for (std::int64_t h = 0; h < heads; ++h) {
    const float* q = qkv + h * hd;
    const float* k = qkv + d + h * hd;
    float* s = scores_.data() + h * len * len;
    // S^T = K^T Q / sqrt(hd): row = key, column = query.
    KWM_CUBLAS_CHECK(gemm_strided_batched(blas_, math_, CUBLAS_OP_T, CUBLAS_OP_N, len, len, hd,
                                          &scale, k, 3 * d, qkv_stride, q, 3 * d, qkv_stride, &zero,
                                          s, len, score_stride, batch));
  }
  kernels::causal_softmax_columns(scores_.data(), len, batch * heads, stream_);
  for (std::int64_t h = 0; h < heads; ++h) {
    const float* v = qkv + 2 * d + h * hd;
    const float* p_transposed = scores_.data() + h * len * len;
    // context = V P^T, P^T being the key x query matrix the softmax left.
    KWM_CUBLAS_CHECK(gemm_strided_batched(
        blas_, math_, CUBLAS_OP_N, CUBLAS_OP_N, hd, len, len, &one, v, 3 * d, qkv_stride,
        p_transposed, len, score_stride, &zero, context + h * hd, d, len * d, batch));
  }
}

void GptForwardCuda::run_forward(const TokenBatch& batch, bool with_targets) {
  const GptConfig& c = parameters_.config();
  validate_batch(c, batch);
  if (with_targets) check_targets(c, batch);
  targeted_columns_ = -1;
  reserve(batch.batch, batch.length);
  const std::int64_t n = batch.tokens();
  const std::int64_t d = c.d_model;
  const auto eps = static_cast<float>(c.layer_norm_eps);
  KWM_CUDA_CHECK(cudaMemcpyAsync(tokens_.data(), batch.inputs.data(), count(n, 4),
                                 cudaMemcpyHostToDevice, stream_));
  if (with_targets) {
    KWM_CUDA_CHECK(cudaMemcpyAsync(targets_.data(), batch.targets.data(), count(n, 4),
                                   cudaMemcpyHostToDevice, stream_));
  }
  kernels::embed(parameters_.token_embedding(), parameters_.position_embedding(), tokens_.data(),
                 x_.data(), d, n, batch.length, c.vocab_size, c.context, stream_);
  for (const DeviceBlock& block : parameters_.blocks()) {
    kernels::layer_norm(x_.data(), block.ln1.gain, block.ln1.bias, normed_.data(), d, n, eps,
                        stream_);
    linear(block.qkv, normed_.data(), qkv_.data(), n, false);
    attention(qkv_.data(), context_.data(), batch.batch, batch.length);
    linear(block.attn_out, context_.data(), x_.data(), n, true);
    kernels::layer_norm(x_.data(), block.ln2.gain, block.ln2.bias, normed_.data(), d, n, eps,
                        stream_);
    linear(block.fc, normed_.data(), hidden_.data(), n, false, /*gelu=*/true);
    linear(block.proj, hidden_.data(), x_.data(), n, true);
  }
  run_head(n);
  targeted_columns_ = with_targets ? n : -1;
}

void GptForwardCuda::run_head(std::int64_t columns) {
  const GptConfig& c = parameters_.config();
  kernels::layer_norm(x_.data(), parameters_.ln_f().gain, parameters_.ln_f().bias, normed_.data(),
                      c.d_model, columns, static_cast<float>(c.layer_norm_eps), stream_);
  linear(parameters_.head(), normed_.data(), logits_.data(), columns, false);
}

GptForwardCuda::DeviceForward GptForwardCuda::device_forward(const TokenBatch& batch) {
  run_forward(batch, true);
  return {normed_.data(), logits_.data(), targets_.data(), stream_, blas_};
}

Matrix<float> GptForwardCuda::logits(const TokenBatch& batch) {
  run_forward(batch, false);
  const GptConfig& c = parameters_.config();
  Matrix<float> out(c.vocab_size, batch.tokens());
  KWM_CUDA_CHECK(cudaMemcpyAsync(out.data(), logits_.data(),
                                 count(c.vocab_size, batch.tokens()) * sizeof(float),
                                 cudaMemcpyDeviceToHost, stream_));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return out;
}

double GptForwardCuda::total_nll(const TokenBatch& batch) {
  run_forward(batch, true);
  return sum_nll(batch.tokens());
}

double GptForwardCuda::head_total_nll() {
  if (targeted_columns_ < 0)
    throw std::logic_error("GptForwardCuda::head_total_nll: no pass with targets came first");
  run_head(targeted_columns_);
  return sum_nll(targeted_columns_);
}

double GptForwardCuda::sum_nll(std::int64_t columns) {
  kernels::cross_entropy(logits_.data(), targets_.data(), nll_.data(), nll_.data() + columns,
                         parameters_.config().vocab_size, columns, stream_);
  double total = 0.0;
  KWM_CUDA_CHECK(cudaMemcpyAsync(&total, nll_.data() + columns, sizeof(double),
                                 cudaMemcpyDeviceToHost, stream_));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return total;
}

}  // namespace kwm::lm::cuda
