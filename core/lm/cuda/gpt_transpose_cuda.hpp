// GptTransposeCuda: the GPT forward pass with its cache, the cross-entropy output innovation
// e = onehot(target) - softmax(logits) and the transposed-Jacobian pass (core/lm's
// transpose_jacobian) on one CUDA device in fp32. Everything stays on the device; the host copies
// exist for tests and for the learner's bookkeeping.
//
// Layout as core/lm (d x N activations, column n = b*T + t, column-major). Per linear site s
// (linear_index order, the head last) the pass keeps the layer's input a_s and its output
// innovation dz_s = J_z^T e; the parameter-shaped result J_theta^T e is one device buffer in
// flatten() order (weight = dz a^T and bias = dz 1 by cuBLAS GEMM/GEMV, the layer-norm gain and
// bias as row sums, the embeddings by deterministic scatter-adds). With e = onehot - p every
// result is -d(total NLL)/d(that quantity). FP32 math by default; set_tensor_math(TensorMath::tf32)
// runs the pass's GEMMs on TF32 tensor cores (tensor_math.hpp), GEMVs and kernels stay fp32.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "core/lm/cuda/device_buffer.hpp"
#include "core/lm/cuda/device_parameters.hpp"
#include "core/lm/cuda/tensor_math.hpp"
#include "core/lm/gpt_parameters.hpp"
#include "core/lm/token_batch.hpp"

namespace kwm::lm::cuda {

// What the pass keeps of one layer norm: xhat (d x N) and 1/std per column.
struct DeviceLayerNormCache {
  float* normalized = nullptr;
  float* inverse_std = nullptr;
};

class GptTransposeCuda {
 public:
  // Uploads the parameters; creates a stream and a cuBLAS handle (default math mode: fp32).
  explicit GptTransposeCuda(const GptParameters<float>& parameters);
  GptTransposeCuda(const GptTransposeCuda&) = delete;
  GptTransposeCuda& operator=(const GptTransposeCuda&) = delete;
  ~GptTransposeCuda();

  // Forward with cache, innovation and transposed-Jacobian pass; returns the total NLL (nats,
  // computed in double from the fp32 logits; a host wait). Throws std::invalid_argument on a bad
  // batch (validate_batch's messages, targets outside the vocabulary, a wrong target count).
  // after_forward, if given, is called once the forward pass and the innovation are queued and
  // before the transposed pass is: the learner records an event there and starts, on a stream of
  // its own, the work that needs only the forward cache (input(site), layer_norm_cache(i)), which
  // the transposed pass reads but never writes.
  double run(const TokenBatch& batch, const std::function<void()>& after_forward = {});

  // After run(): host copies for tests. linear_output(s) is dz_s (d_out x N), linear_input(s)
  // is a_s (d_in x N), parameter_transpose() is J_theta^T e (the head's share added into the
  // token embedding when tied).
  Matrix<float> linear_output(std::size_t site);
  Matrix<float> linear_input(std::size_t site);
  GptParameters<float> parameter_transpose();

  // fp32 (the default) or TF32 tensor-core GEMMs for the pass's products from the next run() on.
  // The handle's math mode stays fp32 (blas() is shared with the learner).
  void set_tensor_math(TensorMath math) { math_ = pass_math(math); }
  TensorMath tensor_math() const { return math_; }

  // Device access for the learner (valid until the next run()).
  DeviceGptParameters& parameters() { return parameters_; }
  DeviceGptParameters& transpose() { return transpose_; }
  const float* input(std::size_t site) const { return input_[site]; }
  const float* output_innovation(std::size_t site) const { return innovation_[site]; }
  // Layer norms in order ln1, ln2 per block, then ln_f.
  const DeviceLayerNormCache& layer_norm_cache(std::size_t index) const { return norms_[index]; }
  std::int64_t columns() const { return columns_; }
  int batch() const { return batch_; }
  int length() const { return length_; }
  const std::vector<std::int32_t>& tokens() const { return host_tokens_; }
  cudaStream_t stream() const { return stream_; }
  cublasHandle_t blas() const { return blas_; }

 private:
  void reserve(int batch, int length);
  void forward(const TokenBatch& batch);
  void backward();
  // output (+)= W input, then + b unless bias is false (the caller adds it, fused with the GELU).
  void linear_forward(const DeviceLinear& layer, const float* input, float* output, bool accumulate,
                      bool bias = true);
  // dz given: weight and bias transposes into transpose_, back = W^T dz (accumulate: back += ...).
  void linear_transpose(const DeviceLinear& layer, const float* input, const float* dz, float* back,
                        bool accumulate);
  void layer_norm_transpose(const DeviceLayerNorm& norm, const DeviceLayerNormCache& cache,
                            const float* g, float* back, bool accumulate);
  void attention_forward(const float* qkv, float* probabilities, float* context);
  void attention_transpose(const float* qkv, const float* probabilities, const float* g_context,
                           float* g_qkv);
  void embedding_transpose(const float* g);

  DeviceGptParameters parameters_;
  DeviceGptParameters transpose_;  // J_theta^T e, same layout
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  TensorMath math_ = TensorMath::fp32;
  int batch_ = 0;
  int length_ = 0;
  std::int64_t columns_ = 0;
  int reserved_batch_ = 0;
  std::vector<std::int32_t> host_tokens_;
  // Workspace (one allocation per role, sliced per layer).
  DeviceBuffer<std::int32_t> tokens_, targets_, csr_;
  DeviceBuffer<float> activations_;    // every cached activation, see reserve()
  DeviceBuffer<float> innovations_;    // every dz_s
  DeviceBuffer<float> probabilities_;  // per layer, B * heads T x T matrices P^T
  DeviceBuffer<float> x_, g_, scratch_, scratch2_, score_gradient_;
  DeviceBuffer<float> sums_;  // row_sums' partials (this stream's only)
  DeviceBuffer<double> nll_;
  std::vector<float*> input_;       // a_s per site
  std::vector<float*> innovation_;  // dz_s per site
  std::vector<float*> pre_gelu_;    // fc output per block
  std::vector<float*> qkv_;         // = linear output of qkv per block
  std::vector<float*> layer_probabilities_;
  std::vector<DeviceLayerNormCache> norms_;
  float* logits_ = nullptr;  // becomes e after the innovation kernel (= dz of the head)
  std::int32_t unique_tokens_ = 0;
};

}  // namespace kwm::lm::cuda
