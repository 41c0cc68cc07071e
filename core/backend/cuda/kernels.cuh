// Launchers for the CUDA backend's own kernels (everything cuBLAS/cuSOLVER does not provide).
// Column-major, leading dimension = rows. Each launcher queues on `stream` and checks the launch.
// Instantiated for float and double.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace kwm::cuda_kernels {

using Index = std::int64_t;

template <typename T>
void fill(T* x, Index count, T value, cudaStream_t stream);

// a <- diag(d) a, a rows x cols.
template <typename T>
void scale_rows(const T* d, T* a, Index rows, Index cols, cudaStream_t stream);

// a_ii <- a_ii + alpha (d == nullptr) or a_ii + d_i, a n x n.
template <typename T>
void add_to_diagonal(const T* d, T alpha, T* a, Index n, cudaStream_t stream);

// d_i <- a_ii.
template <typename T>
void diagonal(const T* a, T* d, Index n, cudaStream_t stream);

// How the two triangles of a square matrix are made equal.
enum class Symmetry { average, lower_to_upper, zero_upper };
// average: a <- (a + a^T)/2; lower_to_upper: upper <- lower^T; zero_upper: strict upper <- 0.
template <typename T>
void make_symmetric(T* a, Index n, Symmetry how, cudaStream_t stream);

// p_i <- p_i - sum_j k_ij u_ij, k and u n x m.
template <typename T>
void diagonal_downdate(T* p, const T* k, const T* u, Index n, Index m, cudaStream_t stream);

// *result <- sum_i x[i * stride], i < count (one block; result is device memory).
template <typename T>
void strided_sum(const T* x, Index count, Index stride, T* result, cudaStream_t stream);

// *flag <- 1 when some entry is NaN or Inf (the caller zeroes *flag first).
template <typename T>
void check_finite(const T* x, Index count, int* flag, cudaStream_t stream);

// Tensors checked by one launch of check_finite_list (passed by value as the kernel's argument,
// so the list needs no device copy).
constexpr int kFiniteList = 64;
template <typename T>
struct FiniteList {
  const T* data[kFiniteList];
  Index size[kFiniteList];
  int count = 0;
};
// *flag <- 1 when some entry of some listed tensor is NaN or Inf (the caller zeroes *flag).
template <typename T>
void check_finite_list(const FiniteList<T>& list, int* flag, cudaStream_t stream);

// x <- NaN in every entry when *flag != 0 (x has count entries).
template <typename T>
void poison_if_flagged(const int* flag, T* x, Index count, cudaStream_t stream);

// dst[i] <- src[i] for i < count, each `size` values; src and dst are device arrays of pointers.
template <typename T>
void copy_batched(const T* const* src, T* const* dst, Index count, Index size, cudaStream_t stream);

// c_j <- beta c_j + sum_i terms[i * size + j] over i < count in order, j < size (beta = 0: c is
// not read, so NaN there does not survive, as in BLAS).
template <typename T>
void sum_terms(const T* terms, Index count, Index size, T beta, T* c, cudaStream_t stream);

// w_i <- clamp(w_i, floor, ceiling); *moved += how many changed (caller zeroes *moved).
template <typename T>
void clamp(T* w, Index n, T floor, T ceiling, unsigned long long* moved, cudaStream_t stream);

// b <- a diag(w): scales the columns of a (rows x cols) into b.
template <typename T>
void scale_columns(const T* a, const T* w, T* b, Index rows, Index cols, cudaStream_t stream);

// The fused covariance downdate P <- P - (K U^T + U K^T)/2 (P n x n, K and U n x m): one pass
// that reads the lower triangle of P once and writes both triangles from the same values, so
// the result is exactly symmetric. tile = 64 or 128 picks the tile edge (0: 64); min_blocks
// (1, 3 or 4; 0: 4) caps registers so that that many 64-wide tiles stay resident per SM (float
// only; the 128-wide tile always runs 2 per SM). Non-default values are benchmark variants.
template <typename T>
void riccati_downdate_fused(T* p, const T* k, const T* u, Index n, Index m, cudaStream_t stream,
                            int tile = 0, int min_blocks = 0);

// The same downdate for `count` matrices of equal n and m in one launch (grid y = the matrix):
// p, k and u are device arrays of count pointers. Default tile configuration.
template <typename T>
void riccati_downdate_fused_batched(T* const* p, const T* const* k, const T* const* u, Index count,
                                    Index n, Index m, cudaStream_t stream);

}  // namespace kwm::cuda_kernels
