// Launchers for the rls-head step on the device (rls_head_cuda.cpp) that cuBLAS/cuSOLVER do not
// provide: the batch's summed predicted probabilities and the mean-probability (pbar) update in
// double, and the Sherman-Morrison application of the mean-field softmax factor
//   G^-1 X = Dg^-1 X + u (u^T X) / (1 - pbar^T u),   Dg = diag(pbar + delta),  u = Dg^-1 pbar
// (core/lm/learners/mean_field_softmax.hpp, there in fp64 on the host). Column-major, each queues
// on `stream` and checks the launch; every sum runs in a fixed order (deterministic).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/lm/cuda/kernels.cuh"

namespace kwm::lm::cuda::kernels {

// The number of column chunks probability_row_sums splits the tokens into (its `partial` holds
// vocab x this many doubles).
Index probability_chunks(Index columns);

// partial(v, c) = sum over the columns n of chunk c of p(v, n), in double, where p = onehot(target)
// - innovation (the innovation softmax_innovation left: e = onehot - p, vocab x N).
void probability_row_sums(const float* innovation, const std::int32_t* targets, double* partial,
                          Index vocab, Index columns, cudaStream_t stream);

// Per row v: batch mean m_v = sum_c partial(v, c) / tokens over the `chunks` columns of partial
// (probability_chunks(N) after probability_row_sums; 1 for sums already totalled over ranks);
// pbar_out_v = m_v when !has_previous, else ema pbar_v + (1 - ema) m_v; then inverse_diagonal_v =
// 1 / (pbar_out_v + delta) and u_v = inverse_diagonal_v pbar_out_v (the Sherman-Morrison vectors
// of the new pbar). With tokens 1 and !has_previous, pbar_out is the row totals themselves.
void mean_probability_update(const double* partial, Index chunks, const double* pbar,
                             double* pbar_out, double* inverse_diagonal, double* u, Index vocab,
                             double tokens, bool has_previous, double ema, double delta,
                             cudaStream_t stream);

// x is the transposed cross statistic D^T (rows x vocab, leading dimension ld): in place,
// x(j, :) <- (G^-1 x(j, :)^T)^T, i.e. every row of D^T (a column of D) gets G^-1. `scale` holds
// rows doubles of workspace.
void apply_mean_field_inverse(float* x, Index rows, Index vocab, Index ld, const double* pbar,
                              const double* inverse_diagonal, const double* u, double* scale,
                              cudaStream_t stream);

}  // namespace kwm::lm::cuda::kernels
