// solve_with_jitter: copy, shift the diagonal, potrf, and only then the solve and its finite check.
#include "core/lm/cuda/jittered_solve.hpp"

#include <vector>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/host_checks.hpp"
#include "core/lm/cuda/transpose_kernels.cuh"

namespace kwm::lm::cuda {
namespace {

// One device word to the host, after the work queued before it.
int read_word(const int* word, cudaStream_t stream) {
  int value = 0;
  KWM_CUDA_CHECK(cudaMemcpyAsync(&value, word, sizeof(int), cudaMemcpyDeviceToHost, stream));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
  return value;
}

}  // namespace

bool solve_with_jitter(const DeviceSolver& solver, const JitterConfig& jitter,
                       const JitteredSystem& system, int& attempts) {
  const cudaStream_t stream = solver.stream;
  const std::int64_t m = system.m;
  const int n = static_cast<int>(m);
  std::vector<float> diagonal(as_size(m));
  KWM_CUDA_CHECK(cudaMemcpy2DAsync(diagonal.data(), sizeof(float), system.information,
                                   as_size(m + 1) * sizeof(float), sizeof(float), as_size(m),
                                   cudaMemcpyDeviceToHost, stream));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
  double trace = 0.0;
  for (const float v : diagonal) trace += static_cast<double>(v);
  const double mean_diagonal = trace / static_cast<double>(m);
  double j = jitter.initial_relative * (mean_diagonal > 0.0 ? mean_diagonal : 1.0);
  for (int k = 0; k < jitter.max_retries; ++k, j *= jitter.growth) {
    ++attempts;
    KWM_CUDA_CHECK(cudaMemcpyAsync(system.factor, system.information,
                                   as_size(m * m) * sizeof(float), cudaMemcpyDeviceToDevice,
                                   stream));
    kernels::add_diagonal(system.factor, static_cast<float>(j), m, m, stream);
    KWM_CUSOLVER_CHECK(cusolverDnSpotrf(solver.handle, CUBLAS_FILL_MODE_LOWER, n, system.factor, n,
                                        solver.workspace, solver.workspace_floats,
                                        system.factor_info));
    if (read_word(system.factor_info, stream) != 0) continue;
    kernels::add_diagonal(system.information, static_cast<float>(j), m, m, stream);  // as solved
    KWM_CUDA_CHECK(cudaMemcpyAsync(system.step, system.cross,
                                   as_size(m * system.rhs) * sizeof(float),
                                   cudaMemcpyDeviceToDevice, stream));
    KWM_CUSOLVER_CHECK(cusolverDnSpotrs(solver.handle, CUBLAS_FILL_MODE_LOWER, n,
                                        static_cast<int>(system.rhs), system.factor, n, system.step,
                                        n, system.solve_info));
    kernels::flag_nonfinite(system.step, m * system.rhs, system.nonfinite, stream);
    return read_word(system.nonfinite, stream) == 0;
  }
  return false;
}

}  // namespace kwm::lm::cuda
