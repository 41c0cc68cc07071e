// GptForwardCuda: the GPT forward pass and its cross entropy on one CUDA device in fp32. Same
// model, layout and column order as core/lm's forward() (activations d x N, column n = b*T + t):
// every linear layer is one cuBLAS SGEMM over all N columns; attention runs per head as two
// strided-batched SGEMMs over the sequences (S^T = K^T Q / sqrt(hd), context = V P^T) around a
// masked column softmax; embedding, layer norm, GELU and the log-softmax cross entropy are
// kernels of kernels.cuh. FP32 math by default; set_tensor_math(TensorMath::tf32) runs the GEMMs
// on TF32 tensor cores (tensor_math.hpp), the kernels stay fp32.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/lm/cuda/device_buffer.hpp"
#include "core/lm/cuda/device_parameters.hpp"
#include "core/lm/cuda/tensor_math.hpp"
#include "core/lm/gpt_parameters.hpp"
#include "core/lm/token_batch.hpp"

namespace kwm::lm::cuda {

// True when the CUDA runtime sees at least one device (false, not an error, without a driver).
bool device_available();

class GptForwardCuda {
 public:
  // Uploads the parameters to the current device; creates a stream and a cuBLAS handle.
  explicit GptForwardCuda(const GptParameters<float>& parameters);
  GptForwardCuda(const GptForwardCuda&) = delete;
  GptForwardCuda& operator=(const GptForwardCuda&) = delete;
  ~GptForwardCuda();

  DeviceGptParameters& parameters() { return parameters_; }
  // The stream every call queues on (device_forward's DeviceForward::stream).
  cudaStream_t stream() const { return stream_; }

  // fp32 (the default) or TF32 tensor-core GEMMs for the following calls.
  void set_tensor_math(TensorMath math) { math_ = pass_math(math); }
  TensorMath tensor_math() const { return math_; }

  // Logits (vocab x N, column n = b*T + t), copied back to the host. Throws
  // std::invalid_argument on a bad batch (validate_batch's messages).
  Matrix<float> logits(const TokenBatch& batch);

  // Summed next-token negative log-likelihood (nats) of batch.targets; the per-token terms are
  // computed in double from the fp32 logits and summed in a fixed order. Throws
  // std::invalid_argument on a bad batch or a target outside [0, vocab).
  double total_nll(const TokenBatch& batch);

  // total_nll of the last batch passed to total_nll or device_forward, running only ln_f and the
  // head again on that pass's residual stream: for a caller that changed nothing but ln_f and the
  // head since (mezo's second perturbed point on a head subspace). Equal to total_nll(batch) with
  // the same parameters, bit for bit (the same kernels on the same inputs). Throws
  // std::logic_error when no such pass came first.
  double head_total_nll();

  // The forward pass of `batch` left on the device for a learner that continues there (the
  // rls-head step): targets checked and uploaded as total_nll does, nothing waited for. The
  // pointers are this object's workspace, valid until its next call; further work goes on
  // `stream` (with `blas`, whose stream it is).
  struct DeviceForward {
    const float* hidden = nullptr;          // final layer-norm output, d x N
    float* logits = nullptr;                // vocab x N
    const std::int32_t* targets = nullptr;  // N
    cudaStream_t stream = nullptr;
    cublasHandle_t blas = nullptr;
  };
  DeviceForward device_forward(const TokenBatch& batch);

 private:
  // Validates, uploads the tokens (and targets when asked) and queues the forward pass; the
  // logits are left in logits_.
  void run_forward(const TokenBatch& batch, bool with_targets);
  // ln_f and the head on the residual stream x_ (columns tokens), into logits_.
  void run_head(std::int64_t columns);
  // The summed NLL of logits_ against targets_ (columns tokens), waited for.
  double sum_nll(std::int64_t columns);
  void reserve(int batch, int length);
  void linear(const DeviceLinear& layer, const float* input, float* output, std::int64_t columns,
              bool accumulate, bool gelu = false);
  void attention(const float* qkv, float* context, int batch, int length);

  DeviceGptParameters parameters_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  TensorMath math_ = TensorMath::fp32;
  std::int64_t targeted_columns_ = -1;  // tokens of the last pass with targets (head_total_nll)
  // Workspace, grown to the largest batch seen.
  DeviceBuffer<std::int32_t> tokens_;
  DeviceBuffer<std::int32_t> targets_;
  DeviceBuffer<float> x_;       // residual stream, d x N
  DeviceBuffer<float> normed_;  // layer-norm output, d x N
  DeviceBuffer<float> qkv_;     // 3d x N
  DeviceBuffer<float> context_;
  DeviceBuffer<float> hidden_;  // mlp x N
  DeviceBuffer<float> scores_;  // (B * heads) matrices T x T
  DeviceBuffer<float> logits_;  // vocab x N
  DeviceBuffer<double> nll_;    // N, then the total at index N
};

}  // namespace kwm::lm::cuda
