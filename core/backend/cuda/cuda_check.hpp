// Checking macros for every CUDA runtime, cuBLAS and cuSOLVER call: a failure throws
// std::runtime_error naming the call's file and line and the library's own error text.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <stdexcept>
#include <string>

namespace kwm::cuda_detail {

[[noreturn]] inline void fail(const char* library, const std::string& what, const char* file,
                              int line) {
  throw std::runtime_error(std::string(library) + " error " + what + " at " + file + ":" +
                           std::to_string(line));
}

inline void check_cuda(cudaError_t status, const char* file, int line) {
  if (status != cudaSuccess) {
    fail("CUDA", std::string(cudaGetErrorName(status)) + " (" + cudaGetErrorString(status) + ")",
         file, line);
  }
}

inline void check_cublas(cublasStatus_t status, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) fail("cuBLAS", cublasGetStatusString(status), file, line);
}

inline void check_cusolver(cusolverStatus_t status, const char* file, int line) {
  if (status != CUSOLVER_STATUS_SUCCESS) {
    fail("cuSOLVER", "status " + std::to_string(static_cast<int>(status)), file, line);
  }
}

}  // namespace kwm::cuda_detail

#define KWM_CUDA_CHECK(call) ::kwm::cuda_detail::check_cuda((call), __FILE__, __LINE__)
#define KWM_CUBLAS_CHECK(call) ::kwm::cuda_detail::check_cublas((call), __FILE__, __LINE__)
#define KWM_CUSOLVER_CHECK(call) ::kwm::cuda_detail::check_cusolver((call), __FILE__, __LINE__)
// After every kernel launch: launch-configuration errors surface here, at the launch site.
#define KWM_CUDA_CHECK_LAUNCH() KWM_CUDA_CHECK(cudaGetLastError())
