// Launchers for the GPT forward kernels cuBLAS does not provide: embedding gather, bias add,
// GELU, layer norm, the causal softmax of attention scores and the fused log-softmax cross
// entropy. fp32, column-major (leading dimension = rows), every launcher queues on `stream` and
// checks the launch. Plain C++17 so that nvcc compiles it (no Eigen here).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace kwm::lm::cuda::kernels {

using Index = std::int64_t;

// x (d x N), column n = b*length + t: token_embedding(tokens[n], :)^T + position_embedding(t, :)^T.
// token_embedding is vocab x d, position_embedding context x d (column-major).
void embed(const float* token_embedding, const float* position_embedding,
           const std::int32_t* tokens, float* x, Index d, Index columns, Index length, Index vocab,
           Index context, cudaStream_t stream);

// z (rows x columns) += bias 1^T.
void add_bias(float* z, const float* bias, Index rows, Index columns, cudaStream_t stream);

// z (rows x columns) += bias 1^T (bias may be null: a layer without one), then out = gelu(z)
// entrywise, gelu(v) = 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))) (out may be z: the
// pre-activation is not kept then). One pass instead of a bias add, a copy and a GELU.
void bias_gelu(float* z, const float* bias, float* out, Index rows, Index columns,
               cudaStream_t stream);

// y = gain (.) (x - mean) / sqrt(var + eps) + bias per column of x (d x N), biased variance.
void layer_norm(const float* x, const float* gain, const float* bias, float* y, Index d,
                Index columns, float eps, cudaStream_t stream);

// scores holds `count` length x length matrices S^T (row = key, column = query), one per
// (sequence, head). Column q becomes softmax over keys 0..q, zero for keys > q.
void causal_softmax_columns(float* scores, Index length, Index count, cudaStream_t stream);

// nll[n] = log sum_v exp(logits(v, n)) - logits(targets[n], n) (max-shifted, accumulated in
// double), logits vocab x N; then *total = sum_n nll[n] in a fixed order (deterministic).
void cross_entropy(const float* logits, const std::int32_t* targets, double* nll, double* total,
                   Index vocab, Index columns, cudaStream_t stream);

}  // namespace kwm::lm::cuda::kernels
