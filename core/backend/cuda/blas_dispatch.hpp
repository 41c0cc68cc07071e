// cuBLAS entry points by element type: one overload per precision, so the backend is one
// template. 64-bit-index variants throughout.
#pragma once

#include <cublas_v2.h>
#include <library_types.h>

#include <cstdint>

namespace kwm::cuda_detail {

template <typename T>
constexpr cudaDataType data_type() {
  return sizeof(T) == 4 ? CUDA_R_32F : CUDA_R_64F;
}

#define KWM_BLAS_OVERLOADS(T, P)                                                                   \
  inline cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,         \
                             int64_t m, int64_t n, int64_t k, const T* alpha, const T* a,          \
                             int64_t lda, const T* b, int64_t ldb, const T* beta, T* c,            \
                             int64_t ldc) {                                                        \
    return cublas##P##gemm_64(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);            \
  }                                                                                                \
  inline cublasStatus_t syrk(cublasHandle_t h, cublasFillMode_t uplo, cublasOperation_t t,         \
                             int64_t n, int64_t k, const T* alpha, const T* a, int64_t lda,        \
                             const T* beta, T* c, int64_t ldc) {                                   \
    return cublas##P##syrk_64(h, uplo, t, n, k, alpha, a, lda, beta, c, ldc);                      \
  }                                                                                                \
  inline cublasStatus_t syr2k(cublasHandle_t h, cublasFillMode_t uplo, cublasOperation_t t,        \
                              int64_t n, int64_t k, const T* alpha, const T* a, int64_t lda,       \
                              const T* b, int64_t ldb, const T* beta, T* c, int64_t ldc) {         \
    return cublas##P##syr2k_64(h, uplo, t, n, k, alpha, a, lda, b, ldb, beta, c, ldc);             \
  }                                                                                                \
  inline cublasStatus_t trsm(cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo,       \
                             cublasOperation_t t, cublasDiagType_t diag, int64_t m, int64_t n,     \
                             const T* alpha, const T* a, int64_t lda, T* b, int64_t ldb) {         \
    return cublas##P##trsm_64(h, side, uplo, t, diag, m, n, alpha, a, lda, b, ldb);                \
  }                                                                                                \
  inline cublasStatus_t axpy(cublasHandle_t h, int64_t n, const T* alpha, const T* x, T* y) {      \
    return cublas##P##axpy_64(h, n, alpha, x, 1, y, 1);                                            \
  }                                                                                                \
  inline cublasStatus_t scal(cublasHandle_t h, int64_t n, const T* alpha, T* x) {                  \
    return cublas##P##scal_64(h, n, alpha, x, 1);                                                  \
  }                                                                                                \
  inline cublasStatus_t dot(cublasHandle_t h, int64_t n, const T* x, const T* y, T* result) {      \
    return cublas##P##dot_64(h, n, x, 1, y, 1, result);                                            \
  }                                                                                                \
  inline cublasStatus_t gemm_batched(                                                              \
      cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,          \
      int64_t k, const T* alpha, const T* const a[], int64_t lda, const T* const b[], int64_t ldb, \
      const T* beta, T* const c[], int64_t ldc, int64_t count) {                                   \
    return cublas##P##gemmBatched_64(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,      \
                                     count);                                                       \
  }                                                                                                \
  inline cublasStatus_t trsm_batched(                                                              \
      cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t t,         \
      cublasDiagType_t diag, int64_t m, int64_t n, const T* alpha, const T* const a[],             \
      int64_t lda, T* const b[], int64_t ldb, int64_t count) {                                     \
    return cublas##P##trsmBatched_64(h, side, uplo, t, diag, m, n, alpha, a, lda, b, ldb, count);  \
  }

KWM_BLAS_OVERLOADS(float, S)
KWM_BLAS_OVERLOADS(double, D)
#undef KWM_BLAS_OVERLOADS

}  // namespace kwm::cuda_detail
