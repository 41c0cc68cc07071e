// The CUDA backend's small kernels: fills, diagonal ops, triangle mirroring, reductions, checks.
// The fused Riccati downdate lives in riccati_downdate.cu.
#include <algorithm>
#include <limits>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/backend/cuda/kernels.cuh"

namespace kwm::cuda_kernels {
namespace {

constexpr int kThreads = 256;

// Grid for a grid-stride loop over count items.
unsigned grid_for(Index count) {
  const Index blocks = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::clamp<Index>(blocks, 1, 8192));
}

__device__ inline Index global_thread() {
  return static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline Index grid_threads() { return static_cast<Index>(gridDim.x) * blockDim.x; }

template <typename T>
__global__ void fill_kernel(T* x, Index count, T value) {
  for (Index i = global_thread(); i < count; i += grid_threads()) x[i] = value;
}

template <typename T>
__global__ void scale_rows_kernel(const T* d, T* a, Index rows, Index count) {
  for (Index i = global_thread(); i < count; i += grid_threads()) a[i] *= d[i % rows];
}

template <typename T>
__global__ void add_to_diagonal_kernel(const T* d, T alpha, T* a, Index n) {
  for (Index i = global_thread(); i < n; i += grid_threads()) {
    a[i * n + i] += d ? d[i] : alpha;
  }
}

template <typename T>
__global__ void diagonal_kernel(const T* a, T* d, Index n) {
  for (Index i = global_thread(); i < n; i += grid_threads()) d[i] = a[i * n + i];
}

// One 32x32 tile pair (lower tile (ti, tj), ti >= tj, and its mirror (tj, ti)) per block,
// staged through shared memory so that both tiles are read and written along columns.
constexpr int kTile = 32;
constexpr int kTileRows = 8;

template <typename T>
__global__ void make_symmetric_kernel(T* a, Index n, Symmetry how) {
  __shared__ T lo[kTile][kTile + 1];  // lo[c][r] = A(ti*32 + r, tj*32 + c)
  __shared__ T up[kTile][kTile + 1];  // up[c][r] = A(tj*32 + r, ti*32 + c)
  // Blocks enumerate the lower tiles: b -> (ti, tj) with b = ti (ti + 1) / 2 + tj.
  const Index b = blockIdx.x;
  Index ti = static_cast<Index>((sqrt(8.0 * static_cast<double>(b) + 1.0) - 1.0) / 2.0);
  while (ti * (ti + 1) / 2 > b) --ti;
  while ((ti + 1) * (ti + 2) / 2 <= b) ++ti;
  const Index tj = b - ti * (ti + 1) / 2;
  const Index row0 = ti * kTile;  // rows of the lower tile
  const Index col0 = tj * kTile;  // columns of the lower tile
  const int x = threadIdx.x;
  // Only averaging needs the upper tile; the other two only rewrite it.
  const bool read_upper = how == Symmetry::average;
  for (int c = threadIdx.y; c < kTile; c += kTileRows) {
    if (row0 + x < n && col0 + c < n) lo[c][x] = a[(col0 + c) * n + row0 + x];
    if (read_upper && col0 + x < n && row0 + c < n) up[c][x] = a[(row0 + c) * n + col0 + x];
  }
  __syncthreads();
  // Lower element (r, c) pairs with upper element up[r][c]; compute both new values first.
  T new_lo[kTile / kTileRows];
  T new_up[kTile / kTileRows];
  for (int k = 0, c = threadIdx.y; c < kTile; c += kTileRows, ++k) {
    const T l = lo[c][x];
    const T u = read_upper ? up[x][c] : T(0);
    switch (how) {
      case Symmetry::average:
        new_lo[k] = new_up[k] = (l + u) / T(2);
        break;
      case Symmetry::lower_to_upper:
        new_lo[k] = new_up[k] = l;
        break;
      case Symmetry::zero_upper:
        new_lo[k] = l;
        new_up[k] = T(0);
        break;
    }
  }
  __syncthreads();
  for (int k = 0, c = threadIdx.y; c < kTile; c += kTileRows, ++k) {
    lo[c][x] = new_lo[k];
    up[x][c] = new_up[k];
  }
  __syncthreads();
  for (int c = threadIdx.y; c < kTile; c += kTileRows) {
    // Lower tile (changed only by averaging): rows >= columns (matters on diagonal tiles); the
    // upper tile: rows < columns.
    const Index lr = row0 + x, lc = col0 + c;
    if (read_upper && lr < n && lc < n && lr >= lc) a[lc * n + lr] = lo[c][x];
    const Index ur = col0 + x, uc = row0 + c;
    if (ur < n && uc < n && ur < uc) a[uc * n + ur] = up[c][x];
  }
}

template <typename T>
__global__ void diagonal_downdate_kernel(T* p, const T* k, const T* u, Index n, Index m) {
  for (Index i = global_thread(); i < n; i += grid_threads()) {
    T s = T(0);
    for (Index j = 0; j < m; ++j) s += k[j * n + i] * u[j * n + i];
    p[i] -= s;
  }
}

template <typename T>
__global__ void strided_sum_kernel(const T* x, Index count, Index stride, T* result) {
  __shared__ T partial[kThreads];
  T s = T(0);
  for (Index i = threadIdx.x; i < count; i += blockDim.x) s += x[i * stride];
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *result = partial[0];
}

template <typename T>
__global__ void check_finite_kernel(const T* x, Index count, int* flag) {
  for (Index i = global_thread(); i < count; i += grid_threads()) {
    if (!isfinite(x[i])) *flag = 1;
  }
}

// Grid y = the listed tensor.
template <typename T>
__global__ void check_finite_list_kernel(FiniteList<T> list, int* flag) {
  const T* x = list.data[blockIdx.y];
  const Index count = list.size[blockIdx.y];
  for (Index i = global_thread(); i < count; i += grid_threads()) {
    if (!isfinite(x[i])) *flag = 1;
  }
}

template <typename T>
__global__ void poison_if_flagged_kernel(const int* flag, T* x, Index count) {
  if (*flag == 0) return;
  const T nan = std::numeric_limits<T>::quiet_NaN();  // constexpr: --expt-relaxed-constexpr
  for (Index i = global_thread(); i < count; i += grid_threads()) x[i] = nan;
}

// Grid y = the entry.
template <typename T>
__global__ void copy_batched_kernel(const T* const* src, T* const* dst, Index size) {
  const T* s = src[blockIdx.y];
  T* d = dst[blockIdx.y];
  for (Index i = global_thread(); i < size; i += grid_threads()) d[i] = s[i];
}

template <typename T>
__global__ void sum_terms_kernel(const T* terms, Index count, Index size, T beta, T* c) {
  for (Index j = global_thread(); j < size; j += grid_threads()) {
    T s = beta == T(0) ? T(0) : beta * c[j];
    for (Index i = 0; i < count; ++i) s += terms[i * size + j];
    c[j] = s;
  }
}

template <typename T>
__global__ void clamp_kernel(T* w, Index n, T floor, T ceiling, unsigned long long* moved) {
  for (Index i = global_thread(); i < n; i += grid_threads()) {
    const T v = w[i];
    const T c = v < floor ? floor : (v > ceiling ? ceiling : v);
    if (c != v) {
      w[i] = c;
      atomicAdd(moved, 1ULL);
    }
  }
}

template <typename T>
__global__ void scale_columns_kernel(const T* a, const T* w, T* b, Index rows, Index count) {
  for (Index i = global_thread(); i < count; i += grid_threads()) b[i] = a[i] * w[i / rows];
}

}  // namespace

template <typename T>
void fill(T* x, Index count, T value, cudaStream_t stream) {
  if (count == 0) return;
  fill_kernel<<<grid_for(count), kThreads, 0, stream>>>(x, count, value);
  KWM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void scale_rows(const T* d, T* a, Index rows, Index cols, cudaStream_t stream) {
  if (rows * cols == 0) return;
  scale_rows_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(d, a, rows, rows * cols);
  KWM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void add_to_diagonal(const T* d, T alpha, T* a, Index n, cudaStream_t stream) {
  if (n == 0) return;
  add_to_diagonal_kernel<<<grid_for(n), kThreads, 0, stream>>>(d, alpha, a, n);
  KWM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void diagonal(const T* a, T* d, Index n, cudaStream_t stream) {
  if (n == 0) return;
  diagonal_kernel<<<grid_for(n), kThreads, 0, stream>>>(a, d, n);
  KWM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void make_symmetric(T* a, Index n, Symmetry how, cudaStream_t stream) {
  if (n <= 1) return;
  const Index tiles = (n + kTile - 1) / kTile;
  const Index blocks = tiles * (tiles + 1) / 2;
  make_symmetric_kernel<<<static_cast<unsigned>(blocks), dim3(kTile, kTileRows), 0, stream>>>(a, n,
                                                                                              how);
  KWM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void diagonal_downdate(T* p, const T* k, const T* u, Index n, Index m, cudaStream_t stream) {
  if (n == 0 || m == 0) return;
  diagonal_downdate_kernel<<<grid_for(n), kThreads, 0, stream>>>(p, k, u, n, m);
  KWM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void strided_sum(const T* x, Index count, Index stride, T* result, cudaStream_t stream) {
  strided_sum_kernel<<<1, kThreads, 0, stream>>>(x, count, stride, result);
  KWM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void check_finite(const T* x, Index count, int* flag, cudaStream_t stream) {
  if (count == 0) return;
  check_finite_kernel<<<grid_for(count), kThreads, 0, stream>>>(x, count, flag);
  KWM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void check_finite_list(const FiniteList<T>& list, int* flag, cudaStream_t stream) {
  if (list.count == 0) return;
  Index largest = 0;
  for (int i = 0; i < list.count; ++i) largest = std::max(largest, list.size[i]);
  if (largest == 0) return;
  const dim3 grid(std::min(grid_for(largest), 1024u), static_cast<unsigned>(list.count));
  check_finite_list_kernel<<<grid, kThreads, 0, stream>>>(list, flag);
  KWM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void poison_if_flagged(const int* flag, T* x, Index count, cudaStream_t stream) {
  if (count == 0) return;
  poison_if_flagged_kernel<<<grid_for(count), kThreads, 0, stream>>>(flag, x, count);
  KWM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void copy_batched(const T* const* src, T* const* dst, Index count, Index size,
                  cudaStream_t stream) {
  if (count == 0 || size == 0) return;
  const dim3 grid(std::min(grid_for(size), 1024u), static_cast<unsigned>(count));
  copy_batched_kernel<<<grid, kThreads, 0, stream>>>(src, dst, size);
  KWM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void sum_terms(const T* terms, Index count, Index size, T beta, T* c, cudaStream_t stream) {
  if (size == 0) return;
  sum_terms_kernel<<<grid_for(size), kThreads, 0, stream>>>(terms, count, size, beta, c);
  KWM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void clamp(T* w, Index n, T floor, T ceiling, unsigned long long* moved, cudaStream_t stream) {
  if (n == 0) return;
  clamp_kernel<<<grid_for(n), kThreads, 0, stream>>>(w, n, floor, ceiling, moved);
  KWM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void scale_columns(const T* a, const T* w, T* b, Index rows, Index cols, cudaStream_t stream) {
  if (rows * cols == 0) return;
  scale_columns_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(a, w, b, rows, rows * cols);
  KWM_CUDA_CHECK_LAUNCH();
}

#define KWM_INSTANTIATE_KERNELS(T)                                                        \
  template void fill<T>(T*, Index, T, cudaStream_t);                                      \
  template void scale_rows<T>(const T*, T*, Index, Index, cudaStream_t);                  \
  template void add_to_diagonal<T>(const T*, T, T*, Index, cudaStream_t);                 \
  template void diagonal<T>(const T*, T*, Index, cudaStream_t);                           \
  template void make_symmetric<T>(T*, Index, Symmetry, cudaStream_t);                     \
  template void diagonal_downdate<T>(T*, const T*, const T*, Index, Index, cudaStream_t); \
  template void strided_sum<T>(const T*, Index, Index, T*, cudaStream_t);                 \
  template void check_finite<T>(const T*, Index, int*, cudaStream_t);                     \
  template void check_finite_list<T>(const FiniteList<T>&, int*, cudaStream_t);           \
  template void poison_if_flagged<T>(const int*, T*, Index, cudaStream_t);                \
  template void copy_batched<T>(const T* const*, T* const*, Index, Index, cudaStream_t);  \
  template void sum_terms<T>(const T*, Index, Index, T, T*, cudaStream_t);                \
  template void clamp<T>(T*, Index, T, T, unsigned long long*, cudaStream_t);             \
  template void scale_columns<T>(const T*, const T*, T*, Index, Index, cudaStream_t);

KWM_INSTANTIATE_KERNELS(float)
KWM_INSTANTIATE_KERNELS(double)

}  // namespace kwm::cuda_kernels
