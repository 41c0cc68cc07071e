// Launchers for the transposed-Jacobian (backward) pass of the GPT on the device and for the
// kwm-linearized learner's elementwise information updates: what cuBLAS/cuSOLVER do not provide.
// fp32, column-major (leading dimension = rows), each queues on `stream` and checks the launch.
// Every reduction sums in a fixed order, so results do not depend on scheduling.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/lm/cuda/kernels.cuh"

namespace kwm::lm::cuda::kernels {

// The layer norm of kernels.cuh that also keeps what its transpose needs: xhat (d x N) and the
// inverse standard deviation per column (N).
void layer_norm_cached(const float* x, const float* gain, const float* bias, float* y, float* xhat,
                       float* inverse_std, Index d, Index columns, float eps, cudaStream_t stream);

// With gh = gain (.) g per column: back (+)= inverse_std * (gh - mean(gh) - xhat mean(gh (.) xhat))
// (accumulate: added into back, the residual stream), and product = g (.) xhat (for the gain's
// row sums).
void layer_norm_transpose(const float* g, const float* gain, const float* xhat,
                          const float* inverse_std, float* back, float* product, Index d,
                          Index columns, bool accumulate, cudaStream_t stream);

// g (.) gelu'(x) entrywise (tanh-form GELU), into out.
void gelu_transpose(const float* x, const float* g, float* out, Index count, cudaStream_t stream);

// Per attention matrix (count of them, length x length, P^T and dP^T with row = key, column =
// query): dS^T = P^T (.) (dP^T - colsum(P^T (.) dP^T)) in place of dP^T (masked entries are 0).
void causal_softmax_transpose(const float* probabilities, float* gradient, Index length,
                              Index count, cudaStream_t stream);

// Per token column, l = logits (+ bias when bias is not null): nll[n] = log sum exp(l) - l_target
// (double), and logits overwritten by the output innovation e = onehot(target) - softmax(l). Then
// *total = sum_n nll[n] (fixed order).
void softmax_innovation(float* logits, const float* bias, const std::int32_t* targets, double* nll,
                        double* total, Index vocab, Index columns, cudaStream_t stream);

// Token rows: out(v, :) += sum over the columns n listed for v (CSR: rows[u] is the token,
// columns[start[u] .. start[u+1]) its columns in increasing order) of g(:, n). out is vocab x d.
void token_embedding_transpose(const float* g, const std::int32_t* rows, const std::int32_t* start,
                               const std::int32_t* columns, Index unique, float* out, Index d,
                               Index vocab, cudaStream_t stream);

// Positions: out(t, i) += sum over sequences b of g(i, b*length + t); out is context x d.
void position_embedding_transpose(const float* g, float* out, Index d, Index batch, Index length,
                                  Index context, cudaStream_t stream);

// Row sums over all columns of a (rows x columns, column-major, leading dimension rows), in a
// fixed order: out[i * stride] = alpha * sum_j a(i, j), or added to out[i * stride] when
// accumulate. workspace holds row_sums_workspace(rows) floats, owned by the calling stream.
Index row_sums_workspace(Index rows);
void row_sums(const float* a, Index rows, Index columns, float alpha, bool accumulate, float* out,
              Index stride, float* workspace, cudaStream_t stream);
// rounded = a rounded to bfloat16 (to nearest even; same layout), and, when out is not null,
// out[i * stride] = alpha * the row sums of the rounded values, in one read of a: the BF16
// statistics' operand and its bias row, which must come from the same rounded inputs for S to be
// the Gram matrix of [rounded x; 1].
void round_bf16_row_sums(const float* a, Index rows, Index columns, __nv_bfloat16* rounded,
                         float alpha, float* out, Index stride, float* workspace,
                         cudaStream_t stream);
// sums[i] = sum_j a(i, j) and squares[i] = sum_j a(i, j)^2 in one read of a.
void row_sums_and_squares(const float* a, Index rows, Index columns, float* sums, float* squares,
                          float* workspace, cudaStream_t stream);

// The cross terms of a linear block with m = d + 1 inputs (m = d without bias_t): cross = step =
// scale [weight_t, bias_t]^T (m x rows, leading dimension m) from the pass's weight_t (rows x d)
// and bias_t (rows); *flag = 1 when any entry is NaN or Inf.
void cross_terms(const float* weight_t, const float* bias_t, Index rows, Index d, float scale,
                 float* cross, float* step, int* flag, cudaStream_t stream);

// *flag = 1 when any of x[0, count) is NaN or Inf (never cleared here).
void flag_nonfinite(const float* x, Index count, int* flag, cudaStream_t stream);

// The lower triangle (i >= j) of the symmetric m x m `full` (column-major) into m (m + 1) / 2
// floats of `packed`, column after column (LAPACK's 'L' packed order); unpack_symmetric writes it
// back into both triangles of `full`. Exact copies (packed_triangles.cu).
void pack_lower(const float* full, Index m, float* packed, cudaStream_t stream);
void unpack_symmetric(const float* packed, Index m, float* full, cudaStream_t stream);

// a(i, i) += shift for i < n (leading dimension ld).
void add_diagonal(float* a, float shift, Index n, Index ld, cudaStream_t stream);

// Embedding block of kwm-linearized (diagonal information, exact): per row v
// l_v' = lambda l_v + (1 - lambda) p0 + count_v / r; candidate E(v, :) = E(v, :) + D(v, :) / (r
// l_v') into step_table (rows x d), l_v' into updated. *flag = 1 on a non-finite count, D or
// result.
void embedding_information_step(const float* table, const float* information, const float* counts,
                                const float* cross, float* step_table, float* updated, Index rows,
                                Index d, float lambda, float prior_precision, float r, int* flag,
                                cudaStream_t stream);

// Layer-norm block of kwm-linearized: per coordinate i a 2 x 2 information step on (g_i, b_i)
// with input [xhat_i; 1] (statistics: sum xhat^2, sum xhat, sum dy xhat, sum dy, tokens) and the
// escalating jitter of core/kalman's jittered Cholesky. Candidates into gain_out, bias_out and
// information_out (d x 3: l11, l12, l22); *flag = 1 when a coordinate is non-finite or stays
// indefinite (the block then moves as a whole or not at all); *retries += jitter retries.
void layer_norm_information_step(const float* gain, const float* bias, const float* information,
                                 const float* sum_square, const float* sum, const float* cross_gain,
                                 const float* cross_bias, float tokens, float* gain_out,
                                 float* bias_out, float* information_out, Index d, float lambda,
                                 float prior_precision, float r, float jitter_initial,
                                 float jitter_growth, int jitter_retries, int* flag, int* retries,
                                 cudaStream_t stream);

}  // namespace kwm::lm::cuda::kernels
