// Kernels of the transposed-Jacobian pass: the layer norm's transpose (its cached forward is in
// layer_norm.cu), GELU', the causal-softmax transpose, the fused softmax innovation
// e = onehot - p, and the deterministic embedding scatter-adds (one thread owns each output entry
// and sums its columns in order).
#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/block_reduce.cuh"
#include "core/lm/cuda/launch.cuh"
#include "core/lm/cuda/transpose_kernels.cuh"

namespace kwm::lm::cuda::kernels {
namespace {

constexpr int kColumnThreads = 128;
constexpr int kWarpsPerBlock = kThreads / 32;

__global__ void layer_norm_transpose_kernel(const float* g, const float* gain, const float* xhat,
                                            const float* inverse_std, float* back, float* product,
                                            Index d, bool accumulate) {
  __shared__ float partial[32];
  const Index n = blockIdx.x;
  const float* gc = g + n * d;
  const float* hc = xhat + n * d;
  float sum_gh = 0.0f, sum_ghx = 0.0f;
  for (Index i = threadIdx.x; i < d; i += blockDim.x) {
    const float gh = gain[i] * gc[i];
    sum_gh += gh;
    sum_ghx += gh * hc[i];
    product[n * d + i] = gc[i] * hc[i];
  }
  const float mean_gh = block_reduce(sum_gh, SumOp{}, partial) / static_cast<float>(d);
  const float mean_ghx = block_reduce(sum_ghx, SumOp{}, partial) / static_cast<float>(d);
  const float inv = inverse_std[n];
  for (Index i = threadIdx.x; i < d; i += blockDim.x) {
    const float value = inv * (gain[i] * gc[i] - mean_gh - hc[i] * mean_ghx);
    back[n * d + i] = accumulate ? back[n * d + i] + value : value;
  }
}

__global__ void gelu_transpose_kernel(const float* x, const float* g, float* out, Index count) {
  constexpr float kSqrtTwoOverPi = 0.7978845608028654f;
  constexpr float kCubic = 0.044715f;
  for (Index k = global_thread(); k < count; k += grid_threads()) {
    const float v = x[k];
    const float t = tanhf(kSqrtTwoOverPi * (v + kCubic * v * v * v));
    const float du = kSqrtTwoOverPi * (1.0f + 3.0f * kCubic * v * v);
    out[k] = g[k] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
  }
}

// One warp per query column (keys contiguous), as the forward softmax.
__global__ void causal_softmax_transpose_kernel(const float* p, float* dp, Index length,
                                                Index columns) {
  const Index column = static_cast<Index>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (column >= columns) return;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const Index query = column % length;
  const float* pc = p + column * length;
  float* gc = dp + column * length;
  float dot = 0.0f;
  for (Index key = lane; key <= query; key += 32) dot += pc[key] * gc[key];
  dot = warp_reduce(dot, SumOp{});
  for (Index key = lane; key < length; key += 32) {
    gc[key] = key <= query ? pc[key] * (gc[key] - dot) : 0.0f;
  }
}

constexpr int kVocabThreads = 256;

// With a bias, the first loop adds it (each thread later reads only the entries it wrote, and
// the reduction's barrier orders them before thread 0 reads the target's): one pass over the
// logits less than a separate bias add.
__global__ void softmax_innovation_kernel(float* logits, const float* bias,
                                          const std::int32_t* targets, double* nll, Index vocab) {
  __shared__ float partial_max[32];
  __shared__ double partial_sum[32];
  const Index n = blockIdx.x;
  float* column = logits + n * vocab;
  float max = -INFINITY;
  for (Index v = threadIdx.x; v < vocab; v += blockDim.x) {
    float z = column[v];
    if (bias != nullptr) {
      z += bias[v];
      column[v] = z;
    }
    max = fmaxf(max, z);
  }
  max = block_reduce(max, MaxOp{}, partial_max);
  double sum = 0.0;
  for (Index v = threadIdx.x; v < vocab; v += blockDim.x) {
    sum += exp(static_cast<double>(column[v]) - static_cast<double>(max));
  }
  sum = block_reduce(sum, SumOp{}, partial_sum);
  const Index target = targets[n];
  if (threadIdx.x == 0) {
    nll[n] = log(sum) - (static_cast<double>(column[target]) - static_cast<double>(max));
  }
  __syncthreads();  // column[target] is read above before anyone overwrites it
  for (Index v = threadIdx.x; v < vocab; v += blockDim.x) {
    const double p = exp(static_cast<double>(column[v]) - static_cast<double>(max)) / sum;
    column[v] = static_cast<float>((v == target ? 1.0 : 0.0) - p);
  }
}

__global__ void total_kernel(const double* x, Index count, double* total) {
  __shared__ double partial[32];
  double sum = 0.0;
  for (Index k = threadIdx.x; k < count; k += blockDim.x) sum += x[k];
  sum = block_reduce(sum, SumOp{}, partial);
  if (threadIdx.x == 0) *total = sum;
}

__global__ void token_embedding_transpose_kernel(const float* g, const std::int32_t* rows,
                                                 const std::int32_t* start,
                                                 const std::int32_t* columns, float* out, Index d,
                                                 Index vocab) {
  const Index u = blockIdx.x;
  const Index row = rows[u];
  for (Index i = threadIdx.x; i < d; i += blockDim.x) {
    float sum = 0.0f;
    for (Index k = start[u]; k < start[u + 1]; ++k)
      sum += g[i + static_cast<Index>(columns[k]) * d];
    out[row + i * vocab] += sum;
  }
}

__global__ void position_embedding_transpose_kernel(const float* g, float* out, Index d,
                                                    Index batch, Index length, Index context) {
  const Index count = d * length;
  for (Index k = global_thread(); k < count; k += grid_threads()) {
    const Index i = k % d;
    const Index t = k / d;
    float sum = 0.0f;
    for (Index b = 0; b < batch; ++b) sum += g[i + (b * length + t) * d];
    out[t + i * context] += sum;
  }
}

__global__ void flag_nonfinite_kernel(const float* x, Index count, int* flag) {
  for (Index k = global_thread(); k < count; k += grid_threads()) {
    if (!isfinite(x[k])) *flag = 1;  // every writer writes the same value
  }
}

__global__ void add_diagonal_kernel(float* a, float shift, Index n, Index ld) {
  for (Index k = global_thread(); k < n; k += grid_threads()) a[k * ld + k] += shift;
}

__global__ void embedding_step_kernel(const float* table, const float* information,
                                      const float* counts, const float* cross, float* step_table,
                                      float* updated, Index rows, Index d, float lambda,
                                      float prior_precision, float r, int* flag) {
  const Index count = rows * d;
  for (Index k = global_thread(); k < count; k += grid_threads()) {
    const Index v = k % rows;
    const float l = lambda * information[v] + (1.0f - lambda) * prior_precision + counts[v] / r;
    const float next = table[k] + cross[k] / (r * l);
    if (!isfinite(counts[v]) || !isfinite(cross[k]) || !isfinite(next)) *flag = 1;
    step_table[k] = next;
    if (k < rows) updated[k] = l;
  }
}

// Lower Cholesky factor of the 2 x 2 [[a, b], [b, c]] + j I; false when not positive definite.
__device__ bool cholesky2(double a, double b, double c, double j, double& f11, double& f21,
                          double& f22) {
  if (!(a + j > 0.0)) return false;
  f11 = sqrt(a + j);
  f21 = b / f11;
  const double rest = c + j - f21 * f21;
  if (!(rest > 0.0)) return false;
  f22 = sqrt(rest);
  return isfinite(f11) && isfinite(f21) && isfinite(f22);
}

__global__ void layer_norm_step_kernel(const float* gain, const float* bias,
                                       const float* information, const float* sum_square,
                                       const float* sum, const float* cross_gain,
                                       const float* cross_bias, float tokens, float* gain_out,
                                       float* bias_out, float* information_out, Index d,
                                       float lambda, float prior_precision, float r,
                                       float jitter_initial, float jitter_growth,
                                       int jitter_retries, int* flag, int* retries) {
  for (Index i = global_thread(); i < d; i += grid_threads()) {
    const double lam = lambda, prior = (1.0 - lam) * prior_precision, rr = r;
    const double a = lam * information[i] + sum_square[i] / rr + prior;
    const double b = lam * information[d + i] + sum[i] / rr;
    const double c = lam * information[2 * d + i] + tokens / rr + prior;
    const double cg = cross_gain[i] / rr, cb = cross_bias[i] / rr;
    if (!isfinite(a) || !isfinite(b) || !isfinite(c) || !isfinite(cg) || !isfinite(cb)) {
      *flag = 1;
      continue;
    }
    double f11 = 0.0, f21 = 0.0, f22 = 0.0, used = 0.0;
    bool ok = cholesky2(a, b, c, 0.0, f11, f21, f22);
    if (!ok) {
      const double mean_diagonal = 0.5 * (a + c);
      double j = jitter_initial * (mean_diagonal > 0.0 ? mean_diagonal : 1.0);
      for (int k = 0; k < jitter_retries && !ok; ++k) {
        atomicAdd(retries, 1);
        used = j;
        ok = cholesky2(a, b, c, j, f11, f21, f22);
        j *= jitter_growth;
      }
    }
    if (!ok) {
      *flag = 1;
      continue;
    }
    // (L^-1 [cg; cb]) by forward then back substitution with L = F F^T.
    const double y1 = cg / f11;
    const double y2 = (cb - f21 * y1) / f22;
    const double s2 = y2 / f22;
    const double s1 = (y1 - f21 * s2) / f11;
    if (!isfinite(s1) || !isfinite(s2)) {
      *flag = 1;
      continue;
    }
    gain_out[i] = static_cast<float>(gain[i] + s1);
    bias_out[i] = static_cast<float>(bias[i] + s2);
    information_out[i] = static_cast<float>(a + used);
    information_out[d + i] = static_cast<float>(b);
    information_out[2 * d + i] = static_cast<float>(c + used);
  }
}

}  // namespace

void layer_norm_transpose(const float* g, const float* gain, const float* xhat,
                          const float* inverse_std, float* back, float* product, Index d,
                          Index columns, bool accumulate, cudaStream_t stream) {
  if (columns == 0) return;
  layer_norm_transpose_kernel<<<static_cast<unsigned>(columns), kColumnThreads, 0, stream>>>(
      g, gain, xhat, inverse_std, back, product, d, accumulate);
  KWM_CUDA_CHECK_LAUNCH();
}

void gelu_transpose(const float* x, const float* g, float* out, Index count, cudaStream_t stream) {
  gelu_transpose_kernel<<<grid_for(count), kThreads, 0, stream>>>(x, g, out, count);
  KWM_CUDA_CHECK_LAUNCH();
}

void causal_softmax_transpose(const float* probabilities, float* gradient, Index length,
                              Index count, cudaStream_t stream) {
  const Index columns = count * length;
  if (columns == 0) return;
  const Index blocks = (columns + kWarpsPerBlock - 1) / kWarpsPerBlock;
  causal_softmax_transpose_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      probabilities, gradient, length, columns);
  KWM_CUDA_CHECK_LAUNCH();
}

void softmax_innovation(float* logits, const float* bias, const std::int32_t* targets, double* nll,
                        double* total, Index vocab, Index columns, cudaStream_t stream) {
  if (columns > 0) {
    softmax_innovation_kernel<<<static_cast<unsigned>(columns), kVocabThreads, 0, stream>>>(
        logits, bias, targets, nll, vocab);
    KWM_CUDA_CHECK_LAUNCH();
  }
  total_kernel<<<1, 1024, 0, stream>>>(nll, columns, total);
  KWM_CUDA_CHECK_LAUNCH();
}

void token_embedding_transpose(const float* g, const std::int32_t* rows, const std::int32_t* start,
                               const std::int32_t* columns, Index unique, float* out, Index d,
                               Index vocab, cudaStream_t stream) {
  if (unique == 0) return;
  token_embedding_transpose_kernel<<<static_cast<unsigned>(unique), kColumnThreads, 0, stream>>>(
      g, rows, start, columns, out, d, vocab);
  KWM_CUDA_CHECK_LAUNCH();
}

void position_embedding_transpose(const float* g, float* out, Index d, Index batch, Index length,
                                  Index context, cudaStream_t stream) {
  const Index count = d * length;
  position_embedding_transpose_kernel<<<grid_for(count), kThreads, 0, stream>>>(g, out, d, batch,
                                                                                length, context);
  KWM_CUDA_CHECK_LAUNCH();
}

void flag_nonfinite(const float* x, Index count, int* flag, cudaStream_t stream) {
  flag_nonfinite_kernel<<<grid_for(count), kThreads, 0, stream>>>(x, count, flag);
  KWM_CUDA_CHECK_LAUNCH();
}

void add_diagonal(float* a, float shift, Index n, Index ld, cudaStream_t stream) {
  add_diagonal_kernel<<<grid_for(n), kThreads, 0, stream>>>(a, shift, n, ld);
  KWM_CUDA_CHECK_LAUNCH();
}

void embedding_information_step(const float* table, const float* information, const float* counts,
                                const float* cross, float* step_table, float* updated, Index rows,
                                Index d, float lambda, float prior_precision, float r, int* flag,
                                cudaStream_t stream) {
  const Index count = rows * d;
  embedding_step_kernel<<<grid_for(count), kThreads, 0, stream>>>(table, information, counts, cross,
                                                                  step_table, updated, rows, d,
                                                                  lambda, prior_precision, r, flag);
  KWM_CUDA_CHECK_LAUNCH();
}

void layer_norm_information_step(const float* gain, const float* bias, const float* information,
                                 const float* sum_square, const float* sum, const float* cross_gain,
                                 const float* cross_bias, float tokens, float* gain_out,
                                 float* bias_out, float* information_out, Index d, float lambda,
                                 float prior_precision, float r, float jitter_initial,
                                 float jitter_growth, int jitter_retries, int* flag, int* retries,
                                 cudaStream_t stream) {
  layer_norm_step_kernel<<<grid_for(d), kThreads, 0, stream>>>(
      gain, bias, information, sum_square, sum, cross_gain, cross_bias, tokens, gain_out, bias_out,
      information_out, d, lambda, prior_precision, r, jitter_initial, jitter_growth, jitter_retries,
      flag, retries);
  KWM_CUDA_CHECK_LAUNCH();
}

}  // namespace kwm::lm::cuda::kernels
