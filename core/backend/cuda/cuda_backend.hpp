// CudaBackend: kwm::Backend<T> on one CUDA device with one stream, cuBLAS/cuSOLVER for the dense
// algebra and kernels.cuh for the rest. Internal to the backend layer and the GPU benchmarks;
// everything else reaches it through make_backend<T>("cuda") (cuda_factory.hpp).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/backend/backend.hpp"
#include "core/backend/cuda/pointer_stage.hpp"

namespace kwm {

// How riccati_downdate is computed. Both read P's lower triangle only and return P exactly
// symmetric. fused: one pass of our kernel (riccati_downdate.cu); syr2k: cuBLAS syr2k then a
// mirror pass; automatic: fused for m < 128, syr2k beyond (the faster of the two on an H200,
// docs/gpu-results.md).
enum class DowndatePath { automatic, fused, syr2k };

template <typename T>
class CudaBackend final : public Backend<T> {
 public:
  CudaBackend();  // throws std::runtime_error when no device is visible
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  cudaStream_t stream() const { return stream_; }
  cublasHandle_t blas() const { return blas_; }
  void set_downdate_path(DowndatePath path) { downdate_path_ = path; }

  std::string name() const override { return "cuda"; }
  MemorySpace space() const override { return MemorySpace::cuda; }

  Tensor<T> allocate(Index rows, Index cols) override;
  void upload(const T* host, Tensor<T>& dst) override;
  void download(const Tensor<T>& src, T* host) override;
  void copy(const Tensor<T>& src, Tensor<T>& dst) override;
  void fill(Tensor<T>& x, T value) override;
  void synchronize() override;

  void gemm(Op op_a, Op op_b, T alpha, const Tensor<T>& a, const Tensor<T>& b, T beta,
            Tensor<T>& c) override;
  void syrk(Op op, T alpha, const Tensor<T>& a, T beta, Tensor<T>& c) override;
  void axpy(T alpha, const Tensor<T>& x, Tensor<T>& y) override;
  void scale(T alpha, Tensor<T>& x) override;
  void scale_rows(const Tensor<T>& d, Tensor<T>& a) override;
  T dot(const Tensor<T>& x, const Tensor<T>& y) override;

  void add_identity(T alpha, Tensor<T>& a) override;
  void add_diagonal(const Tensor<T>& d, Tensor<T>& a) override;
  void symmetrize(Tensor<T>& a) override;
  T trace(const Tensor<T>& a) override;
  void diagonal(const Tensor<T>& a, Tensor<T>& d) override;

  void riccati_downdate(Tensor<T>& p, const Tensor<T>& k, const Tensor<T>& u) override;
  void diagonal_downdate(Tensor<T>& p, const Tensor<T>& k, const Tensor<T>& u) override;

  bool cholesky(Tensor<T>& a) override;
  void cholesky_solve(const Tensor<T>& l, Tensor<T>& b) override;
  void cholesky_solve_right(const Tensor<T>& l, Tensor<T>& b) override;
  void symmetric_eigenvalues(const Tensor<T>& a, Tensor<T>& w) override;
  Index clamp_eigenvalues(Tensor<T>& a, T floor, T ceiling) override;

  void gemm_batched(Op op_a, Op op_b, T alpha, const ConstTensors<T>& a, const ConstTensors<T>& b,
                    T beta, const Tensors<T>& c) override;
  void gemm_sum(Op op_a, Op op_b, T alpha, const ConstTensors<T>& a, const ConstTensors<T>& b,
                T beta, Tensor<T>& c) override;
  void cholesky_solve_right_batched(const Tensor<T>& l, const ConstTensors<T>& b,
                                    const Tensors<T>& x) override;
  void riccati_downdate_batched(const Tensors<T>& p, const ConstTensors<T>& k,
                                const ConstTensors<T>& u) override;

  bool all_finite(const Tensor<T>& x) override;
  void poison_unless_finite(const ConstTensors<T>& checked, Tensor<T>& target) override;

 private:
  // Device workspace for cuSOLVER, grown on demand and kept (cholesky runs every update).
  void* device_workspace(std::size_t bytes);
  void* host_workspace(std::size_t bytes);
  // Runs syevd on a copy of a: eigenvalues into w, eigenvectors left in the returned tensor
  // when vectors is true.
  Tensor<T> eigen_decomposition(const Tensor<T>& a, Tensor<T>& w, bool vectors);
  // Copies a device scalar to the host after the stream has drained up to here.
  template <typename S>
  S read_scalar(const S* device_value);
  // Device workspace for gemm_sum's terms (count x rows x cols), grown on demand and kept.
  T* terms_workspace(std::size_t count);
  // One batched cuBLAS gemm over entries of equal shape (the entries' indices in `group`).
  void gemm_group(Op op_a, Op op_b, T alpha, const ConstTensors<T>& a, const ConstTensors<T>& b,
                  T beta, const std::vector<T*>& c, const std::vector<std::size_t>& group);

  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  cusolverDnHandle_t solver_ = nullptr;
  cusolverDnParams_t solver_params_ = nullptr;
  // Small device scalars: the cuSOLVER info, the finite flag, reductions, the clamp counter.
  std::shared_ptr<unsigned char> scalars_;
  std::shared_ptr<unsigned char> workspace_;
  std::size_t workspace_bytes_ = 0;
  std::vector<unsigned char> host_workspace_;
  std::shared_ptr<T> terms_;
  std::size_t terms_capacity_ = 0;
  // The batched calls' device pointer arrays (pointer_stage.hpp).
  std::unique_ptr<PointerStage> stage_;
  DowndatePath downdate_path_ = DowndatePath::automatic;
};

}  // namespace kwm
