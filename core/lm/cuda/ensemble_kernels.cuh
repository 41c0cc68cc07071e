// Launchers for the kwm-ensemble head evaluation on the device (ensemble_cuda.cpp): each of a
// group of points (member coordinates, fp32, one column of `points` per point, leading dimension
// `stride`) gets its final layer norm and head on the body's shared normalised features; the
// per-token log-softmax turns the logits into the ensemble's observable. Column-major; a group's
// activations are the points' d x N (or vocab x N) blocks one after the other (column g N + n is
// token n of point g). Each queues on `stream` and checks the launch.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/lm/cuda/kernels.cuh"

namespace kwm::lm::cuda::kernels {

// out(:, g N + n) = gain_g (.) normalized(:, n) + bias_g, gain_g = points(gain_at + i, g) and
// bias_g = points(bias_at + i, g): the final layer norm of point g on the shared xhat (d x N).
void member_layer_norm(const float* normalized, const float* points, Index stride, Index gain_at,
                       Index bias_at, float* out, Index d, Index tokens, Index count,
                       cudaStream_t stream);

// weights_g = base + B_g A_g (vocab x d, one after the other), with A_g = points(a_at.., g)
// (rank x d) and B_g = points(a_at + rank d.., g) (vocab x rank): the merged low-rank head.
void merge_low_rank_heads(const float* base, const float* points, Index stride, Index a_at,
                          Index rank, float* weights, Index vocab, Index d, Index count,
                          cudaStream_t stream);

// logits(v, g N + n) += points(bias_at + v, g).
void add_member_bias(float* logits, const float* points, Index stride, Index bias_at, Index vocab,
                     Index tokens, Index count, cudaStream_t stream);

// What a point's column of `out` receives per token.
enum class TokenObservable : int {
  nll = 0,                 // -log p(target), as the cross entropy computes it
  nll_residual = 1,        // sqrt(2 max(nll, 0))
  target_probability = 2,  // exp(-max(nll, 0))
};

// Per column c = g N + n of logits (vocab x count N): nll = log sum_v exp(l_v - max) - (l_t -
// max) with the sum in double (targets[n]); out[c] = the observable of `observed` for points g <
// observed_points, the plain nll for the others.
void token_observables(const float* logits, const std::int32_t* targets, double* out, Index vocab,
                       Index tokens, Index count, Index observed_points, TokenObservable observed,
                       cudaStream_t stream);

}  // namespace kwm::lm::cuda::kernels
