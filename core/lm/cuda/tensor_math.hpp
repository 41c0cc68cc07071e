// TensorMath: whether the GPT passes' GEMMs (GptForwardCuda, GptTransposeCuda) run in plain fp32
// or on TF32 tensor cores (inputs rounded to a 10-bit mantissa, fp32 accumulation), and the two
// GEMM entry points that honour it; for the learner's statistics also on BF16 copies (8-bit
// significand, fp32 accumulation). The learner's factorisations and solves (KwmLinearizedCuda)
// stay fp32 whatever this says; its x x^T statistics take a TensorMath of their own
// (KwmLinearizedCuda::set_statistics_math, learner.statistics_math).
#pragma once

#include <cublas_v2.h>
#include <library_types.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace kwm::lm::cuda {

// bf16 is for the learner's statistics only (learner.statistics_math): their inputs are rounded
// to bfloat16 copies, whose products cuBLAS sums in fp32. The passes keep fp32 operands in memory,
// so they take fp32 or tf32 (pass_math refuses bf16).
enum class TensorMath { fp32, tf32, bf16 };

inline const char* tensor_math_name(TensorMath math) {
  switch (math) {
    case TensorMath::tf32:
      return "tf32";
    case TensorMath::bf16:
      return "bf16";
    case TensorMath::fp32:
      break;
  }
  return "fp32";
}

// The config value of learner.tensor_math (or of `key`, e.g. learner.statistics_math): fp32 or
// tf32, and bf16 where `bf16_allowed` (the statistics).
inline TensorMath parse_tensor_math(const std::string& name,
                                    const std::string& key = "learner.tensor_math",
                                    bool bf16_allowed = false) {
  if (name == "fp32") return TensorMath::fp32;
  if (name == "tf32") return TensorMath::tf32;
  if (name == "bf16" && bf16_allowed) return TensorMath::bf16;
  if (name == "bf16")
    throw std::invalid_argument("key '" + key +
                                "' must be fp32 or tf32; got 'bf16', which only "
                                "learner.statistics_math offers (the pass keeps fp32 operands)");
  throw std::invalid_argument("key '" + key + "' must be fp32 or tf32" +
                              (bf16_allowed ? std::string(" or bf16") : std::string()) + "; got '" +
                              name + "'");
}

// The math of a pass's GEMMs (fp32 operands in memory): bf16 is refused. The passes' setters
// check here, so gemm and gemm_strided_batched below only ever see fp32 or tf32.
inline TensorMath pass_math(TensorMath math) {
  if (math == TensorMath::bf16)
    throw std::invalid_argument(
        "the GPT pass's GEMMs take fp32 or tf32; bf16 is for the learner's statistics only");
  return math;
}

// TF32 is chosen per call (cublasGemmEx with CUBLAS_COMPUTE_32F_FAST_TF32), not by the handle's
// math mode: the pass's cuBLAS handle is shared with KwmLinearizedCuda, which queues its
// GEMVs and GEAMs on it, and those must stay fp32 (its x x^T statistics take TF32 only when
// learner.statistics_math asks, through these same entry points). In fp32 mode
// these are the very calls the passes made before (cublasSgemm_64 and
// cublasSgemmStridedBatched_64), so fp32 results are unchanged bit for bit.

// C = alpha op(A) op(B) + beta C, all fp32 in memory, column-major.
inline cublasStatus_t gemm(cublasHandle_t handle, TensorMath math, cublasOperation_t ta,
                           cublasOperation_t tb, std::int64_t m, std::int64_t n, std::int64_t k,
                           const float* alpha, const float* a, std::int64_t lda, const float* b,
                           std::int64_t ldb, const float* beta, float* c, std::int64_t ldc) {
  if (math == TensorMath::fp32)
    return cublasSgemm_64(handle, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  return cublasGemmEx_64(handle, ta, tb, m, n, k, alpha, a, CUDA_R_32F, lda, b, CUDA_R_32F, ldb,
                         beta, c, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F_FAST_TF32,
                         CUBLAS_GEMM_DEFAULT);
}

// count products C_i = alpha op(A_i) op(B_i) + beta C_i, X_i = X + i * stride_x.
inline cublasStatus_t gemm_strided_batched(cublasHandle_t handle, TensorMath math,
                                           cublasOperation_t ta, cublasOperation_t tb,
                                           std::int64_t m, std::int64_t n, std::int64_t k,
                                           const float* alpha, const float* a, std::int64_t lda,
                                           std::int64_t stride_a, const float* b, std::int64_t ldb,
                                           std::int64_t stride_b, const float* beta, float* c,
                                           std::int64_t ldc, std::int64_t stride_c,
                                           std::int64_t count) {
  if (math == TensorMath::fp32)
    return cublasSgemmStridedBatched_64(handle, ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb,
                                        stride_b, beta, c, ldc, stride_c, count);
  return cublasGemmStridedBatchedEx_64(
      handle, ta, tb, m, n, k, alpha, a, CUDA_R_32F, lda, stride_a, b, CUDA_R_32F, ldb, stride_b,
      beta, c, CUDA_R_32F, ldc, stride_c, count, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT);
}

}  // namespace kwm::lm::cuda
