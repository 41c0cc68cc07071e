// CudaBackend<T>: every Backend method on cuBLAS/cuSOLVER or a kernel of kernels.cuh, all queued
// on the backend's stream. Methods that return a host value (dot, trace, cholesky's success,
// all_finite, clamp_eigenvalues) wait for the stream; the batched methods never do.
#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/backend/batch_shapes.hpp"
#include "core/backend/cuda/blas_dispatch.hpp"
#include "core/backend/cuda/cuda_backend.hpp"
#include "core/backend/cuda/cuda_check.hpp"
#include "core/backend/cuda/cuda_factory.hpp"
#include "core/backend/cuda/kernels.cuh"

namespace kwm {
namespace {

using cuda_detail::data_type;
namespace kernels = cuda_kernels;

// Offsets into the backend's small device scalar block.
constexpr std::size_t kInfoOffset = 0;     // int
constexpr std::size_t kFlagOffset = 8;     // int
constexpr std::size_t kMovedOffset = 16;   // unsigned long long
constexpr std::size_t kResultOffset = 32;  // T
constexpr std::size_t kPoisonOffset = 48;  // int: poison_unless_finite's verdict
constexpr std::size_t kScalarBytes = 64;

template <typename T>
std::string dims(const Tensor<T>& t) {
  return std::to_string(t.rows()) + "x" + std::to_string(t.cols());
}

void require(bool ok, const char* kernel, const std::string& detail) {
  if (!ok) throw ShapeError(std::string("cuda ") + kernel + ": " + detail);
}

template <typename T>
void require_device(const Tensor<T>& t, const char* kernel) {
  if (t.size() > 0 && (t.space() != MemorySpace::cuda || t.data() == nullptr)) {
    throw std::invalid_argument(std::string("cuda ") + kernel +
                                ": tensor is not in CUDA memory (allocate it with this backend)");
  }
}

template <typename T>
void require_square(const Tensor<T>& a, const char* kernel) {
  require(a.is_square(), kernel, "matrix must be square; got " + dims(a));
  require_device(a, kernel);
}

int64_t ld(Index rows) { return std::max<Index>(rows, 1); }

cublasOperation_t to_cublas(Op op) { return op == Op::none ? CUBLAS_OP_N : CUBLAS_OP_T; }

template <typename T>
std::shared_ptr<T> device_alloc(std::size_t count) {
  T* ptr = nullptr;
  KWM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr), count * sizeof(T)));
  return std::shared_ptr<T>(ptr, [](T* q) { cudaFree(q); });  // no throw from a deleter
}

// The entries of a batched call as launches: entries with equal key share a launch (at most
// kMaxBatch each, so one launch's three pointer arrays fit a PointerStage slot), and an output
// that repeats first closes the launches gathered so far, so that its updates land in entry
// order as the loop over the single operation would apply them.
constexpr std::size_t kMaxBatch = 1024;

template <typename Key>
struct Launch {
  Key key;
  std::vector<std::size_t> entries;
};

template <typename Key, typename KeyOf, typename OutputOf>
std::vector<Launch<Key>> plan_launches(const std::vector<std::size_t>& active, KeyOf key_of,
                                       OutputOf output_of) {
  std::vector<Launch<Key>> planned;
  std::vector<Launch<Key>> open;
  std::unordered_set<const void*> outputs;
  auto close = [&] {
    for (Launch<Key>& launch : open) planned.push_back(std::move(launch));
    open.clear();
    outputs.clear();
  };
  for (const std::size_t i : active) {
    if (!outputs.insert(output_of(i)).second) {
      close();
      outputs.insert(output_of(i));
    }
    const Key key = key_of(i);
    auto it = std::find_if(open.begin(), open.end(), [&](const Launch<Key>& launch) {
      return launch.key == key && launch.entries.size() < kMaxBatch;
    });
    if (it == open.end()) it = open.insert(open.end(), Launch<Key>{key, {}});
    it->entries.push_back(i);
  }
  close();
  return planned;
}

using batch::op_cols;
using batch::op_rows;

}  // namespace

bool cuda_device_present() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return false;
  }
  return count > 0;
}

template <typename T>
CudaBackend<T>::CudaBackend() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw std::runtime_error(
        std::string("CUDA backend: no CUDA device is visible (cudaGetDeviceCount: ") +
        (status == cudaSuccess ? "0 devices" : cudaGetErrorString(status)) +
        "); use backend \"cpu\" or check CUDA_VISIBLE_DEVICES and the driver");
  }
  KWM_CUDA_CHECK(cudaGetDevice(&device_));
  KWM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  KWM_CUBLAS_CHECK(cublasCreate(&blas_));
  KWM_CUBLAS_CHECK(cublasSetStream(blas_, stream_));
  // Plain IEEE fp32/fp64 products: no TF32 (the conformance tolerances assume full precision).
  KWM_CUBLAS_CHECK(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));
  KWM_CUSOLVER_CHECK(cusolverDnCreate(&solver_));
  KWM_CUSOLVER_CHECK(cusolverDnSetStream(solver_, stream_));
  KWM_CUSOLVER_CHECK(cusolverDnCreateParams(&solver_params_));
  scalars_ = device_alloc<unsigned char>(kScalarBytes);
  stage_ = std::make_unique<PointerStage>(stream_);
}

template <typename T>
CudaBackend<T>::~CudaBackend() {
  // Destructors must not throw: release in reverse order, ignoring errors at shutdown.
  if (stream_) cudaStreamSynchronize(stream_);
  stage_.reset();
  if (solver_params_) cusolverDnDestroyParams(solver_params_);
  if (solver_) cusolverDnDestroy(solver_);
  if (blas_) cublasDestroy(blas_);
  if (stream_) cudaStreamDestroy(stream_);
}

template <typename T>
void* CudaBackend<T>::device_workspace(std::size_t bytes) {
  if (bytes > workspace_bytes_) {
    KWM_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the old buffer may still be in use
    workspace_ = device_alloc<unsigned char>(bytes);
    workspace_bytes_ = bytes;
  }
  return workspace_.get();
}

template <typename T>
void* CudaBackend<T>::host_workspace(std::size_t bytes) {
  if (bytes > host_workspace_.size()) host_workspace_.resize(bytes);
  return host_workspace_.empty() ? nullptr : host_workspace_.data();
}

template <typename T>
T* CudaBackend<T>::terms_workspace(std::size_t elements) {
  if (elements > terms_capacity_) {
    KWM_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the old buffer may still be in use
    terms_ = device_alloc<T>(elements);
    terms_capacity_ = elements;
  }
  return terms_.get();
}

template <typename T>
template <typename S>
S CudaBackend<T>::read_scalar(const S* device_value) {
  S value{};
  KWM_CUDA_CHECK(cudaMemcpyAsync(&value, device_value, sizeof(S), cudaMemcpyDeviceToHost, stream_));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return value;
}

// ---- memory ------------------------------------------------------------------------------------

template <typename T>
Tensor<T> CudaBackend<T>::allocate(Index rows, Index cols) {
  require(rows >= 0 && cols >= 0, "allocate",
          "negative shape " + std::to_string(rows) + "x" + std::to_string(cols));
  if (rows * cols == 0) return Tensor<T>(rows, cols, nullptr, MemorySpace::cuda);
  auto storage = device_alloc<T>(static_cast<std::size_t>(rows * cols));
  KWM_CUDA_CHECK(cudaMemsetAsync(storage.get(), 0, rows * cols * sizeof(T), stream_));
  return Tensor<T>(rows, cols, std::move(storage), MemorySpace::cuda);
}

template <typename T>
void CudaBackend<T>::upload(const T* host, Tensor<T>& dst) {
  require_device(dst, "upload");
  if (dst.empty()) return;
  KWM_CUDA_CHECK(
      cudaMemcpyAsync(dst.data(), host, dst.size() * sizeof(T), cudaMemcpyHostToDevice, stream_));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the caller may free `host` on return
}

template <typename T>
void CudaBackend<T>::download(const Tensor<T>& src, T* host) {
  require_device(src, "download");
  if (src.empty()) return;
  KWM_CUDA_CHECK(
      cudaMemcpyAsync(host, src.data(), src.size() * sizeof(T), cudaMemcpyDeviceToHost, stream_));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

template <typename T>
void CudaBackend<T>::copy(const Tensor<T>& src, Tensor<T>& dst) {
  require(src.rows() == dst.rows() && src.cols() == dst.cols(), "copy",
          "source is " + dims(src) + " but destination is " + dims(dst));
  require_device(src, "copy");
  require_device(dst, "copy");
  if (src.empty() || src.data() == dst.data()) return;
  KWM_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), src.size() * sizeof(T),
                                 cudaMemcpyDeviceToDevice, stream_));
}

template <typename T>
void CudaBackend<T>::fill(Tensor<T>& x, T value) {
  require_device(x, "fill");
  kernels::fill(x.data(), x.size(), value, stream_);
}

template <typename T>
void CudaBackend<T>::synchronize() {
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

// ---- BLAS-like ---------------------------------------------------------------------------------

template <typename T>
void CudaBackend<T>::gemm(Op op_a, Op op_b, T alpha, const Tensor<T>& a, const Tensor<T>& b, T beta,
                          Tensor<T>& c) {
  const Index rows = op_a == Op::none ? a.rows() : a.cols();
  const Index inner = op_a == Op::none ? a.cols() : a.rows();
  const Index inner_b = op_b == Op::none ? b.rows() : b.cols();
  const Index cols = op_b == Op::none ? b.cols() : b.rows();
  require(inner == inner_b && rows == c.rows() && cols == c.cols(), "gemm",
          "op(A) is " + std::to_string(rows) + "x" + std::to_string(inner) + ", op(B) is " +
              std::to_string(inner_b) + "x" + std::to_string(cols) + ", C is " + dims(c));
  require_device(a, "gemm");
  require_device(b, "gemm");
  require_device(c, "gemm");
  if (c.empty()) return;
  KWM_CUBLAS_CHECK(cuda_detail::gemm(blas_, to_cublas(op_a), to_cublas(op_b), rows, cols, inner,
                                     &alpha, a.data(), ld(a.rows()), b.data(), ld(b.rows()), &beta,
                                     c.data(), ld(c.rows())));
}

template <typename T>
void CudaBackend<T>::syrk(Op op, T alpha, const Tensor<T>& a, T beta, Tensor<T>& c) {
  const Index n = op == Op::none ? a.rows() : a.cols();
  const Index k = op == Op::none ? a.cols() : a.rows();
  require(c.is_square() && c.rows() == n, "syrk",
          "A is " + dims(a) + (op == Op::none ? " (A A^T)" : " (A^T A)") + " but C is " + dims(c));
  require_device(a, "syrk");
  require_device(c, "syrk");
  if (c.empty()) return;
  KWM_CUBLAS_CHECK(cuda_detail::syrk(blas_, CUBLAS_FILL_MODE_LOWER, to_cublas(op), n, k, &alpha,
                                     a.data(), ld(a.rows()), &beta, c.data(), ld(n)));
  kernels::make_symmetric(c.data(), n, kernels::Symmetry::lower_to_upper, stream_);
}

template <typename T>
void CudaBackend<T>::axpy(T alpha, const Tensor<T>& x, Tensor<T>& y) {
  require(x.size() == y.size(), "axpy", "x is " + dims(x) + " but y is " + dims(y));
  require_device(x, "axpy");
  require_device(y, "axpy");
  if (y.empty()) return;
  KWM_CUBLAS_CHECK(cuda_detail::axpy(blas_, y.size(), &alpha, x.data(), y.data()));
}

template <typename T>
void CudaBackend<T>::scale(T alpha, Tensor<T>& x) {
  require_device(x, "scale");
  if (x.empty()) return;
  KWM_CUBLAS_CHECK(cuda_detail::scal(blas_, x.size(), &alpha, x.data()));
}

template <typename T>
void CudaBackend<T>::scale_rows(const Tensor<T>& d, Tensor<T>& a) {
  require(d.size() == a.rows(), "scale_rows",
          "d is " + dims(d) + " but A is " + dims(a) + " (d needs A.rows() x 1)");
  require_device(d, "scale_rows");
  require_device(a, "scale_rows");
  kernels::scale_rows(d.data(), a.data(), a.rows(), a.cols(), stream_);
}

template <typename T>
T CudaBackend<T>::dot(const Tensor<T>& x, const Tensor<T>& y) {
  require(x.size() == y.size(), "dot", "x is " + dims(x) + " but y is " + dims(y));
  require_device(x, "dot");
  require_device(y, "dot");
  if (x.empty()) return T(0);
  T result{};
  KWM_CUBLAS_CHECK(cuda_detail::dot(blas_, x.size(), x.data(), y.data(), &result));
  return result;  // host pointer mode: cuBLAS waited for the result
}

// ---- symmetric matrices ------------------------------------------------------------------------

template <typename T>
void CudaBackend<T>::add_identity(T alpha, Tensor<T>& a) {
  require_square(a, "add_identity");
  kernels::add_to_diagonal<T>(nullptr, alpha, a.data(), a.rows(), stream_);
}

template <typename T>
void CudaBackend<T>::add_diagonal(const Tensor<T>& d, Tensor<T>& a) {
  require_square(a, "add_diagonal");
  require(d.size() == a.rows(), "add_diagonal", "d is " + dims(d) + " but A is " + dims(a));
  require_device(d, "add_diagonal");
  kernels::add_to_diagonal(d.data(), T(0), a.data(), a.rows(), stream_);
}

template <typename T>
void CudaBackend<T>::symmetrize(Tensor<T>& a) {
  require_square(a, "symmetrize");
  kernels::make_symmetric(a.data(), a.rows(), kernels::Symmetry::average, stream_);
}

template <typename T>
T CudaBackend<T>::trace(const Tensor<T>& a) {
  require_square(a, "trace");
  if (a.empty()) return T(0);
  T* result = reinterpret_cast<T*>(scalars_.get() + kResultOffset);
  kernels::strided_sum(a.data(), a.rows(), a.rows() + 1, result, stream_);
  return read_scalar(result);
}

template <typename T>
void CudaBackend<T>::diagonal(const Tensor<T>& a, Tensor<T>& d) {
  require_square(a, "diagonal");
  require(d.size() == a.rows(), "diagonal",
          "d is " + dims(d) + " but A is " + dims(a) + " (d needs n entries)");
  require_device(d, "diagonal");
  kernels::diagonal(a.data(), d.data(), a.rows(), stream_);
}

// ---- Riccati -----------------------------------------------------------------------------------

template <typename T>
void CudaBackend<T>::riccati_downdate(Tensor<T>& p, const Tensor<T>& k, const Tensor<T>& u) {
  require_square(p, "riccati_downdate");
  require(k.rows() == p.rows() && u.rows() == p.rows() && k.cols() == u.cols(), "riccati_downdate",
          "P is " + dims(p) + ", K is " + dims(k) + ", U is " + dims(u) +
              " (K and U must both be n x m)");
  require_device(k, "riccati_downdate");
  require_device(u, "riccati_downdate");
  const Index n = p.rows();
  const Index m = k.cols();
  if (n == 0 || m == 0) return;
  // Both paths read P's lower triangle only (P is symmetric) and return exactly symmetric P.
  // Automatic: the fused pass up to m = 127, cuBLAS syr2k beyond (measured on an H200,
  // docs/gpu-results.md).
  DowndatePath path = downdate_path_;
  if (path == DowndatePath::automatic) {
    path = m < 128 ? DowndatePath::fused : DowndatePath::syr2k;
  }
  if (path == DowndatePath::fused) {
    kernels::riccati_downdate_fused(p.data(), k.data(), u.data(), n, m, stream_);
  } else {
    const T alpha = T(-0.5);
    const T beta = T(1);
    KWM_CUBLAS_CHECK(cuda_detail::syr2k(blas_, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, n, m, &alpha,
                                        k.data(), n, u.data(), n, &beta, p.data(), n));
    kernels::make_symmetric(p.data(), n, kernels::Symmetry::lower_to_upper, stream_);
  }
}

template <typename T>
void CudaBackend<T>::diagonal_downdate(Tensor<T>& p, const Tensor<T>& k, const Tensor<T>& u) {
  require(
      p.cols() == 1 && k.rows() == p.rows() && u.rows() == p.rows() && k.cols() == u.cols(),
      "diagonal_downdate",
      "p is " + dims(p) + ", K is " + dims(k) + ", U is " + dims(u) + " (p n x 1, K and U n x m)");
  require_device(p, "diagonal_downdate");
  require_device(k, "diagonal_downdate");
  require_device(u, "diagonal_downdate");
  kernels::diagonal_downdate(p.data(), k.data(), u.data(), p.rows(), k.cols(), stream_);
}

// ---- factorisations ----------------------------------------------------------------------------

template <typename T>
bool CudaBackend<T>::cholesky(Tensor<T>& a) {
  require_square(a, "cholesky");
  const Index n = a.rows();
  if (n == 0) return true;
  std::size_t device_bytes = 0;
  std::size_t host_bytes = 0;
  KWM_CUSOLVER_CHECK(cusolverDnXpotrf_bufferSize(solver_, solver_params_, CUBLAS_FILL_MODE_LOWER, n,
                                                 data_type<T>(), a.data(), n, data_type<T>(),
                                                 &device_bytes, &host_bytes));
  int* info = reinterpret_cast<int*>(scalars_.get() + kInfoOffset);
  KWM_CUSOLVER_CHECK(cusolverDnXpotrf(solver_, solver_params_, CUBLAS_FILL_MODE_LOWER, n,
                                      data_type<T>(), a.data(), n, data_type<T>(),
                                      device_workspace(device_bytes), device_bytes,
                                      host_workspace(host_bytes), host_bytes, info));
  const int status = read_scalar(info);
  if (status < 0) {
    throw std::runtime_error("cuda cholesky: cusolverDnXpotrf rejected argument " +
                             std::to_string(-status));
  }
  if (status > 0) return false;  // leading minor `status` is not positive definite
  kernels::make_symmetric(a.data(), n, kernels::Symmetry::zero_upper, stream_);
  return true;
}

template <typename T>
void CudaBackend<T>::cholesky_solve(const Tensor<T>& l, Tensor<T>& b) {
  require_square(l, "cholesky_solve");
  require(b.rows() == l.rows(), "cholesky_solve",
          "L is " + dims(l) + " but B is " + dims(b) + " (B needs L.rows() rows)");
  require_device(b, "cholesky_solve");
  if (b.empty()) return;
  int* info = reinterpret_cast<int*>(scalars_.get() + kInfoOffset);
  // potrs only reports malformed arguments in info, and the shapes were checked above.
  KWM_CUSOLVER_CHECK(cusolverDnXpotrs(solver_, solver_params_, CUBLAS_FILL_MODE_LOWER, l.rows(),
                                      b.cols(), data_type<T>(), l.data(), l.rows(), data_type<T>(),
                                      b.data(), b.rows(), info));
}

template <typename T>
void CudaBackend<T>::cholesky_solve_right(const Tensor<T>& l, Tensor<T>& b) {
  require_square(l, "cholesky_solve_right");
  require(b.cols() == l.rows(), "cholesky_solve_right",
          "L is " + dims(l) + " but B is " + dims(b) + " (B needs L.rows() columns)");
  require_device(b, "cholesky_solve_right");
  if (b.empty()) return;
  const T one = T(1);
  const Index n = l.rows();
  // B (L L^T)^-1 = (B L^-T) L^-1: two triangular solves from the right.
  KWM_CUBLAS_CHECK(cuda_detail::trsm(blas_, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T,
                                     CUBLAS_DIAG_NON_UNIT, b.rows(), n, &one, l.data(), n, b.data(),
                                     ld(b.rows())));
  KWM_CUBLAS_CHECK(cuda_detail::trsm(blas_, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                                     CUBLAS_DIAG_NON_UNIT, b.rows(), n, &one, l.data(), n, b.data(),
                                     ld(b.rows())));
}

template <typename T>
Tensor<T> CudaBackend<T>::eigen_decomposition(const Tensor<T>& a, Tensor<T>& w, bool vectors) {
  const Index n = a.rows();
  Tensor<T> v = allocate(n, n);
  copy(a, v);
  const cusolverEigMode_t mode = vectors ? CUSOLVER_EIG_MODE_VECTOR : CUSOLVER_EIG_MODE_NOVECTOR;
  std::size_t device_bytes = 0;
  std::size_t host_bytes = 0;
  KWM_CUSOLVER_CHECK(cusolverDnXsyevd_bufferSize(
      solver_, solver_params_, mode, CUBLAS_FILL_MODE_LOWER, n, data_type<T>(), v.data(), n,
      data_type<T>(), w.data(), data_type<T>(), &device_bytes, &host_bytes));
  int* info = reinterpret_cast<int*>(scalars_.get() + kInfoOffset);
  KWM_CUSOLVER_CHECK(cusolverDnXsyevd(solver_, solver_params_, mode, CUBLAS_FILL_MODE_LOWER, n,
                                      data_type<T>(), v.data(), n, data_type<T>(), w.data(),
                                      data_type<T>(), device_workspace(device_bytes), device_bytes,
                                      host_workspace(host_bytes), host_bytes, info));
  const int status = read_scalar(info);
  if (status != 0) {
    throw std::runtime_error("cuda symmetric eigensolver (syevd) failed with info " +
                             std::to_string(status) +
                             (status > 0 ? " (did not converge; is A finite?)" : ""));
  }
  return v;
}

template <typename T>
void CudaBackend<T>::symmetric_eigenvalues(const Tensor<T>& a, Tensor<T>& w) {
  require_square(a, "symmetric_eigenvalues");
  require(w.size() == a.rows(), "symmetric_eigenvalues",
          "w is " + dims(w) + " but A is " + dims(a) + " (w needs n entries)");
  require_device(w, "symmetric_eigenvalues");
  if (a.empty()) return;
  eigen_decomposition(a, w, false);
}

template <typename T>
Index CudaBackend<T>::clamp_eigenvalues(Tensor<T>& a, T floor, T ceiling) {
  require_square(a, "clamp_eigenvalues");
  require(floor <= ceiling, "clamp_eigenvalues", "floor must not exceed ceiling");
  const Index n = a.rows();
  if (n == 0) return 0;
  Tensor<T> w = allocate(n, 1);
  Tensor<T> v = eigen_decomposition(a, w, true);
  auto* moved = reinterpret_cast<unsigned long long*>(scalars_.get() + kMovedOffset);
  KWM_CUDA_CHECK(cudaMemsetAsync(moved, 0, sizeof(unsigned long long), stream_));
  kernels::clamp(w.data(), n, floor, ceiling, moved, stream_);
  const auto count = static_cast<Index>(read_scalar(moved));
  if (count == 0) return 0;  // nothing moved: A stays as it was, bit for bit
  // A <- (V diag(w)) V^T, then averaged so both triangles agree exactly.
  Tensor<T> vw = allocate(n, n);
  kernels::scale_columns(v.data(), w.data(), vw.data(), n, n, stream_);
  gemm(Op::none, Op::transpose, T(1), vw, v, T(0), a);
  symmetrize(a);
  return count;
}

// ---- batched -----------------------------------------------------------------------------------

template <typename T>
void CudaBackend<T>::gemm_group(Op op_a, Op op_b, T alpha, const ConstTensors<T>& a,
                                const ConstTensors<T>& b, T beta, const std::vector<T*>& c,
                                const std::vector<std::size_t>& group) {
  const Tensor<T>& a0 = *a[group.front()];
  const Tensor<T>& b0 = *b[group.front()];
  const Index rows = op_rows(op_a, a0);
  const Index cols = op_cols(op_b, b0);
  const Index inner = op_cols(op_a, a0);
  const std::size_t count = group.size();
  std::vector<const void*> words(3 * count);
  for (std::size_t j = 0; j < count; ++j) {
    words[j] = a[group[j]]->data();
    words[count + j] = b[group[j]]->data();
    words[2 * count + j] = c[group[j]];
  }
  void** staged = stage_->stage(words);
  KWM_CUBLAS_CHECK(cuda_detail::gemm_batched(
      blas_, to_cublas(op_a), to_cublas(op_b), rows, cols, inner, &alpha,
      reinterpret_cast<const T* const*>(staged), ld(a0.rows()),
      reinterpret_cast<const T* const*>(staged + count), ld(b0.rows()), &beta,
      reinterpret_cast<T* const*>(staged + 2 * count), ld(rows), static_cast<int64_t>(count)));
}

template <typename T>
void CudaBackend<T>::gemm_batched(Op op_a, Op op_b, T alpha, const ConstTensors<T>& a,
                                  const ConstTensors<T>& b, T beta, const Tensors<T>& c) {
  batch::check_gemm("cuda gemm_batched", op_a, op_b, a, b, c);
  std::vector<std::size_t> active;
  std::vector<T*> outputs(c.size(), nullptr);
  for (std::size_t i = 0; i < c.size(); ++i) {
    require_device(*a[i], "gemm_batched");
    require_device(*b[i], "gemm_batched");
    require_device(*c[i], "gemm_batched");
    outputs[i] = c[i]->data();
    if (!c[i]->empty()) active.push_back(i);
  }
  using Key = std::array<Index, 3>;
  const auto launches = plan_launches<Key>(
      active,
      [&](std::size_t i) {
        return Key{op_rows(op_a, *a[i]), op_cols(op_b, *b[i]), op_cols(op_a, *a[i])};
      },
      [&](std::size_t i) { return static_cast<const void*>(outputs[i]); });
  for (const auto& launch : launches)
    gemm_group(op_a, op_b, alpha, a, b, beta, outputs, launch.entries);
}

template <typename T>
void CudaBackend<T>::gemm_sum(Op op_a, Op op_b, T alpha, const ConstTensors<T>& a,
                              const ConstTensors<T>& b, T beta, Tensor<T>& c) {
  batch::check_gemm_sum("cuda gemm_sum", op_a, op_b, a, b, c);
  require_device(c, "gemm_sum");
  if (c.empty()) return;
  // Terms with an empty inner dimension add nothing; the others each get a rows x cols slot.
  std::vector<std::size_t> active;
  for (std::size_t i = 0; i < a.size(); ++i) {
    require_device(*a[i], "gemm_sum");
    require_device(*b[i], "gemm_sum");
    if (op_cols(op_a, *a[i]) > 0) active.push_back(i);
  }
  const auto size = static_cast<std::size_t>(c.size());
  T* terms = active.empty() ? nullptr : terms_workspace(active.size() * size);
  std::vector<T*> slots(a.size(), nullptr);
  for (std::size_t j = 0; j < active.size(); ++j) slots[active[j]] = terms + j * size;
  const auto launches = plan_launches<Index>(
      active, [&](std::size_t i) { return op_cols(op_a, *a[i]); },
      [&](std::size_t i) { return static_cast<const void*>(slots[i]); });
  for (const auto& launch : launches)
    gemm_group(op_a, op_b, alpha, a, b, T(0), slots, launch.entries);
  // One pass adds the slots in entry order (and beta C).
  kernels::sum_terms(terms, static_cast<Index>(active.size()), c.size(), beta, c.data(), stream_);
}

template <typename T>
void CudaBackend<T>::cholesky_solve_right_batched(const Tensor<T>& l, const ConstTensors<T>& b,
                                                  const Tensors<T>& x) {
  batch::check_solve_right("cuda cholesky_solve_right_batched", l, b, x);
  require_device(l, "cholesky_solve_right_batched");
  const Index n = l.rows();
  std::vector<std::size_t> active;
  for (std::size_t i = 0; i < b.size(); ++i) {
    require_device(*b[i], "cholesky_solve_right_batched");
    require_device(*x[i], "cholesky_solve_right_batched");
    if (!x[i]->empty()) active.push_back(i);
  }
  const auto launches = plan_launches<Index>(
      active, [&](std::size_t i) { return x[i]->rows(); },
      [&](std::size_t i) { return static_cast<const void*>(x[i]->data()); });
  const T one = T(1);
  for (const auto& launch : launches) {
    const std::size_t count = launch.entries.size();
    const Index rows = launch.key;
    std::vector<const void*> words(3 * count);
    for (std::size_t j = 0; j < count; ++j) {
      words[j] = b[launch.entries[j]]->data();
      words[count + j] = x[launch.entries[j]]->data();
      words[2 * count + j] = l.data();
    }
    void** staged = stage_->stage(words);
    auto* xs = reinterpret_cast<T* const*>(staged + count);
    auto* ls = reinterpret_cast<const T* const*>(staged + 2 * count);
    kernels::copy_batched(reinterpret_cast<const T* const*>(staged), xs, static_cast<Index>(count),
                          rows * n, stream_);
    // X (L L^T)^-1 = (X L^-T) L^-1: two triangular solves from the right, every entry at once.
    KWM_CUBLAS_CHECK(cuda_detail::trsm_batched(blas_, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER,
                                               CUBLAS_OP_T, CUBLAS_DIAG_NON_UNIT, rows, n, &one, ls,
                                               n, xs, ld(rows), static_cast<int64_t>(count)));
    KWM_CUBLAS_CHECK(cuda_detail::trsm_batched(blas_, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER,
                                               CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT, rows, n, &one, ls,
                                               n, xs, ld(rows), static_cast<int64_t>(count)));
  }
}

template <typename T>
void CudaBackend<T>::riccati_downdate_batched(const Tensors<T>& p, const ConstTensors<T>& k,
                                              const ConstTensors<T>& u) {
  batch::check_downdate("cuda riccati_downdate_batched", p, k, u);
  std::vector<std::size_t> active;
  for (std::size_t i = 0; i < p.size(); ++i) {
    require_device(*p[i], "riccati_downdate_batched");
    require_device(*k[i], "riccati_downdate_batched");
    require_device(*u[i], "riccati_downdate_batched");
    if (p[i]->rows() > 0 && k[i]->cols() > 0) active.push_back(i);
  }
  using Key = std::array<Index, 2>;
  const auto launches = plan_launches<Key>(
      active,
      [&](std::size_t i) {
        return Key{p[i]->rows(), k[i]->cols()};
      },
      [&](std::size_t i) { return static_cast<const void*>(p[i]->data()); });
  for (const auto& launch : launches) {
    const Index n = launch.key[0];
    const Index m = launch.key[1];
    // The path riccati_downdate would take; the syr2k path has no batched form in cuBLAS.
    const bool fused = downdate_path_ == DowndatePath::fused ||
                       (downdate_path_ == DowndatePath::automatic && m < 128);
    if (!fused) {
      for (const std::size_t i : launch.entries) riccati_downdate(*p[i], *k[i], *u[i]);
      continue;
    }
    const std::size_t count = launch.entries.size();
    std::vector<const void*> words(3 * count);
    for (std::size_t j = 0; j < count; ++j) {
      words[j] = p[launch.entries[j]]->data();
      words[count + j] = k[launch.entries[j]]->data();
      words[2 * count + j] = u[launch.entries[j]]->data();
    }
    void** staged = stage_->stage(words);
    kernels::riccati_downdate_fused_batched(reinterpret_cast<T* const*>(staged),
                                            reinterpret_cast<const T* const*>(staged + count),
                                            reinterpret_cast<const T* const*>(staged + 2 * count),
                                            static_cast<Index>(count), n, m, stream_);
  }
}

// ---- checks ------------------------------------------------------------------------------------

template <typename T>
bool CudaBackend<T>::all_finite(const Tensor<T>& x) {
  require_device(x, "all_finite");
  if (x.empty()) return true;
  int* flag = reinterpret_cast<int*>(scalars_.get() + kFlagOffset);
  KWM_CUDA_CHECK(cudaMemsetAsync(flag, 0, sizeof(int), stream_));
  kernels::check_finite(x.data(), x.size(), flag, stream_);
  return read_scalar(flag) == 0;
}

template <typename T>
void CudaBackend<T>::poison_unless_finite(const ConstTensors<T>& checked, Tensor<T>& target) {
  batch::check_list("cuda poison_unless_finite", checked);
  require_device(target, "poison_unless_finite");
  int* flag = reinterpret_cast<int*>(scalars_.get() + kPoisonOffset);
  KWM_CUDA_CHECK(cudaMemsetAsync(flag, 0, sizeof(int), stream_));
  kernels::FiniteList<T> list;
  for (const Tensor<T>* x : checked) {
    require_device(*x, "poison_unless_finite");
    if (x->empty()) continue;
    list.data[list.count] = x->data();
    list.size[list.count] = x->size();
    if (++list.count == kernels::kFiniteList) {
      kernels::check_finite_list(list, flag, stream_);
      list.count = 0;
    }
  }
  kernels::check_finite_list(list, flag, stream_);
  kernels::poison_if_flagged(flag, target.data(), target.size(), stream_);
}

// ---- factory -----------------------------------------------------------------------------------

template <typename T>
std::unique_ptr<Backend<T>> make_cuda_backend() {
  return std::make_unique<CudaBackend<T>>();
}

template class CudaBackend<float>;
template class CudaBackend<double>;
template std::unique_ptr<Backend<float>> make_cuda_backend<float>();
template std::unique_ptr<Backend<double>> make_cuda_backend<double>();

}  // namespace kwm
