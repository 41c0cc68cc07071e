// The fused kernels of the step's profile-driven rewrite (bench/lm_cuda/profile_step_device.sh)
// against host fp64 on random data, at shapes that take every path: row sums (strided,
// accumulated, fewer columns than chunks, rows not a multiple of the 32-row tile), row sums with
// squares, the bias add and bias + GELU (float4 and scalar paths, in place and not), and the cross
// terms (with and without the bias row, and their non-finite flag), the packed lower triangle
// of the several-rank statistics (exact), and the BF16 statistics' rounded copy (exact, ties to
// even) with its row sums. Outputs are poisoned with NaN first, so an element the
// kernel never writes fails. Tolerance: fp32 sums of at most 1000 terms
// against fp64, 1e-5 of the largest magnitude. Skipped without a CUDA device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/lm/cuda/device_buffer.hpp"
#include "core/lm/cuda/kernels.cuh"
#include "core/lm/cuda/transpose_kernels.cuh"
#include "tests/lm_cuda/lm_cuda_test_support.hpp"

namespace kwm::lm {
namespace {

using cuda::DeviceBuffer;
using testing::download;
using testing::upload;
using Index = std::int64_t;
constexpr double kTolerance = 1e-5;
constexpr float kPoison = std::numeric_limits<float>::quiet_NaN();

std::vector<float> random_values(std::size_t count, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(count);
  for (float& x : v) x = normal(rng);
  return v;
}

// max |got - want| / max |want| over the listed entries; NaN (an unwritten entry) gives infinity.
double error(const std::vector<float>& got, const std::vector<double>& want) {
  double scale = 0.0, worst = 0.0;
  for (const double w : want) scale = std::max(scale, std::abs(w));
  for (std::size_t k = 0; k < want.size(); ++k) {
    const double e = std::abs(static_cast<double>(got[k]) - want[k]);
    if (!std::isfinite(e)) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, e);
  }
  return worst / (scale > 0.0 ? scale : 1.0);
}

double gelu(double v) {
  return 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
}

TEST(LmCudaFusedKernels, RowSumsMatchFp64AtEveryShape) {
  KWM_REQUIRE_CUDA_DEVICE();
  struct Shape {
    Index rows, columns, stride;
    bool accumulate;
  };
  for (const Shape s : {Shape{256, 1000, 1, false}, Shape{37, 5, 3, true}, Shape{1025, 97, 1, true},
                        Shape{1, 64, 1, false}}) {
    const auto a = random_values(static_cast<std::size_t>(s.rows * s.columns), 7);
    const auto before = random_values(static_cast<std::size_t>(s.rows * s.stride), 8);
    DeviceBuffer<float> da = upload(a), out = upload(before);
    DeviceBuffer<float> work(static_cast<std::size_t>(cuda::kernels::row_sums_workspace(s.rows)));
    const float alpha = 0.5f;
    cuda::kernels::row_sums(da.data(), s.rows, s.columns, alpha, s.accumulate, out.data(), s.stride,
                            work.data(), nullptr);
    const auto got_all = download(out, before.size());
    std::vector<float> got;
    std::vector<double> want;
    for (Index i = 0; i < s.rows; ++i) {
      double sum = 0.0;
      for (Index j = 0; j < s.columns; ++j)
        sum += static_cast<double>(a[static_cast<std::size_t>(i + j * s.rows)]);
      const auto k = static_cast<std::size_t>(i * s.stride);
      want.push_back(static_cast<double>(alpha) * sum +
                     (s.accumulate ? static_cast<double>(before[k]) : 0.0));
      got.push_back(got_all[k]);
    }
    EXPECT_LT(error(got, want), kTolerance) << s.rows << " x " << s.columns;
    for (Index i = 0; i < s.rows * s.stride; ++i) {  // entries between the strided ones stay
      const auto k = static_cast<std::size_t>(i);
      if (i % s.stride != 0) {
        EXPECT_EQ(got_all[k], before[k]);
      }
    }
  }
}

TEST(LmCudaFusedKernels, RowSumsAndSquaresMatchFp64) {
  KWM_REQUIRE_CUDA_DEVICE();
  for (const Index columns : {Index{1000}, Index{3}}) {
    const Index rows = 70;
    const auto a = random_values(static_cast<std::size_t>(rows * columns), 9);
    DeviceBuffer<float> da = upload(a);
    DeviceBuffer<float> sums = upload(std::vector<float>(rows, kPoison));
    DeviceBuffer<float> squares = upload(std::vector<float>(rows, kPoison));
    DeviceBuffer<float> work(static_cast<std::size_t>(cuda::kernels::row_sums_workspace(rows)));
    cuda::kernels::row_sums_and_squares(da.data(), rows, columns, sums.data(), squares.data(),
                                        work.data(), nullptr);
    std::vector<double> want_sums, want_squares;
    for (Index i = 0; i < rows; ++i) {
      double s = 0.0, q = 0.0;
      for (Index j = 0; j < columns; ++j) {
        const auto v = static_cast<double>(a[static_cast<std::size_t>(i + j * rows)]);
        s += v;
        q += v * v;
      }
      want_sums.push_back(s);
      want_squares.push_back(q);
    }
    EXPECT_LT(error(download(sums, rows), want_sums), kTolerance) << columns;
    EXPECT_LT(error(download(squares, rows), want_squares), kTolerance) << columns;
  }
}

// bfloat16 of a finite float, rounded to nearest even: the top 16 bits after adding half an ulp
// of the kept part (less one when the kept part is even, so ties go to even).
std::uint16_t bf16_bits(float v) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &v, sizeof(bits));
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

double bf16_value(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float v = 0.0f;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}

// The BF16 statistics' operand: every entry rounded exactly as the host rounds it (ties among
// them), the copy poisoned first so an unwritten entry fails, and the optional row sums those of
// the rounded values (strided, as the bias row of the moments).
TEST(LmCudaFusedKernels, RoundBf16RowSumsRoundToNearestEvenAndSumTheRoundedValues) {
  KWM_REQUIRE_CUDA_DEVICE();
  struct Shape {
    Index rows, columns, stride;
    bool sums;
  };
  for (const Shape s : {Shape{256, 1000, 1, true}, Shape{37, 5, 3, false}, Shape{1025, 97, 2, true},
                        Shape{1, 64, 1, true}}) {
    auto a = random_values(static_cast<std::size_t>(s.rows * s.columns), 11);
    // Ties: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 (even: 1), 1 + 3 * 2^-8 halfway between
    // 1 + 2^-7 and 1 + 2^-6 (even: 1 + 2^-6).
    a[0] = 1.0f + 0x1p-8f;
    if (a.size() > 1) a[1] = -(1.0f + 3 * 0x1p-8f);
    DeviceBuffer<float> da = upload(a);
    const auto count = static_cast<std::size_t>(s.rows * s.columns);
    DeviceBuffer<__nv_bfloat16> rounded(count);
    KWM_CUDA_CHECK(cudaMemset(rounded.data(), 0xFF, count * sizeof(__nv_bfloat16)));
    const std::vector<float> before(static_cast<std::size_t>(s.rows * s.stride), kPoison);
    DeviceBuffer<float> out = upload(before);
    DeviceBuffer<float> work(static_cast<std::size_t>(cuda::kernels::row_sums_workspace(s.rows)));
    const float alpha = 0.25f;
    cuda::kernels::round_bf16_row_sums(da.data(), s.rows, s.columns, rounded.data(), alpha,
                                       s.sums ? out.data() : nullptr, s.stride, work.data(),
                                       nullptr);
    std::vector<std::uint16_t> got_bits(count);
    KWM_CUDA_CHECK(cudaMemcpy(got_bits.data(), rounded.data(), count * sizeof(std::uint16_t),
                              cudaMemcpyDeviceToHost));
    std::size_t mismatches = 0;
    for (std::size_t k = 0; k < count; ++k) mismatches += got_bits[k] != bf16_bits(a[k]) ? 1 : 0;
    EXPECT_EQ(mismatches, 0u) << s.rows << " x " << s.columns;
    EXPECT_EQ(bf16_value(got_bits[0]), 1.0);
    if (count > 1) {
      EXPECT_EQ(bf16_value(got_bits[1]), -(1.0 + 0x1p-6));
    }
    const auto got_all = download(out, before.size());
    std::vector<float> got;
    std::vector<double> want;
    for (Index i = 0; i < s.rows; ++i) {
      double sum = 0.0;
      for (Index j = 0; j < s.columns; ++j)
        sum += bf16_value(bf16_bits(a[static_cast<std::size_t>(i + j * s.rows)]));
      want.push_back(static_cast<double>(alpha) * sum);
      got.push_back(got_all[static_cast<std::size_t>(i * s.stride)]);
    }
    if (s.sums) {
      EXPECT_LT(error(got, want), kTolerance) << s.rows << " x " << s.columns;
    } else {
      for (const float g : got_all) {
        EXPECT_TRUE(std::isnan(g)) << "sums written without a target";
      }
    }
  }
}

TEST(LmCudaFusedKernels, BiasAndBiasGeluMatchFp64OnBothPaths) {
  KWM_REQUIRE_CUDA_DEVICE();
  // rows 1024: float4 path; rows 30 and an offset of one float: the scalar path.
  struct Shape {
    Index rows, columns, offset;
  };
  for (const Shape s : {Shape{1024, 33, 0}, Shape{30, 17, 0}, Shape{64, 9, 1}}) {
    const auto count = static_cast<std::size_t>(s.rows * s.columns);
    const auto z = random_values(count, 11);
    const auto bias = random_values(static_cast<std::size_t>(s.rows), 12);
    std::vector<double> pre(count), act(count);
    for (std::size_t k = 0; k < count; ++k) {
      pre[k] = static_cast<double>(z[k]) +
               static_cast<double>(bias[k % static_cast<std::size_t>(s.rows)]);
      act[k] = gelu(pre[k]);
    }
    std::vector<float> padded(count + 1, 0.0f);
    std::copy(z.begin(), z.end(), padded.begin() + s.offset);
    const auto o = static_cast<std::size_t>(s.offset);
    const auto tail = [&](const std::vector<float>& v) {
      return std::vector<float>(v.begin() + static_cast<std::ptrdiff_t>(o),
                                v.begin() + static_cast<std::ptrdiff_t>(o + count));
    };
    DeviceBuffer<float> db = upload(bias);
    {  // bias add
      DeviceBuffer<float> dz = upload(padded);
      cuda::kernels::add_bias(dz.data() + s.offset, db.data(), s.rows, s.columns, nullptr);
      EXPECT_LT(error(tail(download(dz, count + 1)), pre), kTolerance) << s.rows;
    }
    {  // bias + GELU into a second buffer: the pre-activation stays
      DeviceBuffer<float> dz = upload(padded);
      DeviceBuffer<float> out = upload(std::vector<float>(count + 1, kPoison));
      cuda::kernels::bias_gelu(dz.data() + s.offset, db.data(), out.data() + s.offset, s.rows,
                               s.columns, nullptr);
      EXPECT_LT(error(tail(download(dz, count + 1)), pre), kTolerance) << s.rows;
      EXPECT_LT(error(tail(download(out, count + 1)), act), kTolerance) << s.rows;
    }
    {  // in place
      DeviceBuffer<float> dz = upload(padded);
      cuda::kernels::bias_gelu(dz.data() + s.offset, db.data(), dz.data() + s.offset, s.rows,
                               s.columns, nullptr);
      EXPECT_LT(error(tail(download(dz, count + 1)), act), kTolerance) << s.rows;
    }
    {  // no bias (a layer without one): z stays, out = gelu(z)
      std::vector<double> plain(count), plain_act(count);
      for (std::size_t k = 0; k < count; ++k) {
        plain[k] = static_cast<double>(z[k]);
        plain_act[k] = gelu(plain[k]);
      }
      DeviceBuffer<float> dz = upload(padded);
      DeviceBuffer<float> out = upload(std::vector<float>(count + 1, kPoison));
      cuda::kernels::bias_gelu(dz.data() + s.offset, nullptr, out.data() + s.offset, s.rows,
                               s.columns, nullptr);
      EXPECT_LT(error(tail(download(dz, count + 1)), plain), kTolerance) << s.rows;
      EXPECT_LT(error(tail(download(out, count + 1)), plain_act), kTolerance) << s.rows;
    }
  }
}

TEST(LmCudaFusedKernels, CrossTermsAreTheScaledTransposeAndFlagNonFinite) {
  KWM_REQUIRE_CUDA_DEVICE();
  for (const bool with_bias : {true, false}) {
    const Index rows = 70, d = 45, m = d + (with_bias ? 1 : 0);
    const auto weight_t = random_values(static_cast<std::size_t>(rows * d), 13);
    const auto bias_t = random_values(static_cast<std::size_t>(rows), 14);
    DeviceBuffer<float> dw = upload(weight_t), db = upload(bias_t);
    const auto count = static_cast<std::size_t>(m * rows);
    DeviceBuffer<float> cross = upload(std::vector<float>(count, kPoison));
    DeviceBuffer<float> step = upload(std::vector<float>(count, kPoison));
    DeviceBuffer<int> flag(1);
    KWM_CUDA_CHECK(cudaMemset(flag.data(), 0, sizeof(int)));
    const float scale = 0.25f;
    cuda::kernels::cross_terms(dw.data(), with_bias ? db.data() : nullptr, rows, d, scale,
                               cross.data(), step.data(), flag.data(), nullptr);
    std::vector<double> want(count);
    for (Index o = 0; o < rows; ++o) {
      for (Index i = 0; i < m; ++i) {
        const float v = i < d ? weight_t[static_cast<std::size_t>(o + i * rows)]
                              : bias_t[static_cast<std::size_t>(o)];
        want[static_cast<std::size_t>(i + o * m)] =
            static_cast<double>(scale) * static_cast<double>(v);
      }
    }
    EXPECT_LT(error(download(cross, count), want), kTolerance);
    EXPECT_LT(error(download(step, count), want), kTolerance);
    int raised = -1;
    KWM_CUDA_CHECK(cudaMemcpy(&raised, flag.data(), sizeof(int), cudaMemcpyDeviceToHost));
    EXPECT_EQ(raised, 0);
    // One NaN in J^T e raises the flag.
    const float nan = kPoison;
    KWM_CUDA_CHECK(cudaMemcpy(dw.data() + 5, &nan, sizeof(float), cudaMemcpyHostToDevice));
    cuda::kernels::cross_terms(dw.data(), with_bias ? db.data() : nullptr, rows, d, scale,
                               cross.data(), step.data(), flag.data(), nullptr);
    KWM_CUDA_CHECK(cudaMemcpy(&raised, flag.data(), sizeof(int), cudaMemcpyDeviceToHost));
    EXPECT_EQ(raised, 1);
  }
}

// The packed lower triangle of kwm-linearized's several-rank statistics: pack_lower writes
// column j's entries j..m-1 in LAPACK's 'L' packed order (checked entry by entry against the host),
// unpack_symmetric writes them back into both triangles, so a pack, a sum of packs and an unpack
// give the sum of the full symmetric matrices exactly (fp32 additions of two values, as the
// all-reduce makes). Sizes: smaller than a tile, not a multiple of 32, and 257 (the model's d + 1).
TEST(LmCudaFusedKernels, PackedLowerTriangleRoundTripsAndSumsExactly) {
  KWM_REQUIRE_CUDA_DEVICE();
  for (const Index m : {Index{1}, Index{5}, Index{33}, Index{70}, Index{257}}) {
    const auto full_count = static_cast<std::size_t>(m * m);
    const auto packed_count = static_cast<std::size_t>(m * (m + 1) / 2);
    // Two symmetric matrices (the statistics of two ranks).
    std::vector<std::vector<float>> sym;
    for (const std::uint32_t seed : {21u, 22u}) {
      auto v = random_values(full_count, seed + static_cast<std::uint32_t>(m));
      for (Index j = 0; j < m; ++j)
        for (Index i = 0; i < j; ++i)
          v[static_cast<std::size_t>(i + j * m)] = v[static_cast<std::size_t>(j + i * m)];
      sym.push_back(v);
    }
    DeviceBuffer<float> a = upload(sym[0]), b = upload(sym[1]);
    DeviceBuffer<float> pa = upload(std::vector<float>(packed_count, kPoison));
    DeviceBuffer<float> pb = upload(std::vector<float>(packed_count, kPoison));
    cuda::kernels::pack_lower(a.data(), m, pa.data(), nullptr);
    cuda::kernels::pack_lower(b.data(), m, pb.data(), nullptr);
    const std::vector<float> packed_a = download(pa, packed_count);
    std::size_t at = 0, mismatches = 0;
    for (Index j = 0; j < m; ++j)
      for (Index i = j; i < m; ++i, ++at)
        if (packed_a[at] != sym[0][static_cast<std::size_t>(i + j * m)]) ++mismatches;
    EXPECT_EQ(at, packed_count);
    EXPECT_EQ(mismatches, 0U) << "m = " << m << ": packed order";
    // The "all-reduce": the sum of the two packs, on the host.
    const std::vector<float> packed_b = download(pb, packed_count);
    std::vector<float> summed(packed_count);
    for (std::size_t k = 0; k < packed_count; ++k) summed[k] = packed_a[k] + packed_b[k];
    DeviceBuffer<float> ps = upload(summed);
    DeviceBuffer<float> out = upload(std::vector<float>(full_count, kPoison));
    cuda::kernels::unpack_symmetric(ps.data(), m, out.data(), nullptr);
    const std::vector<float> got = download(out, full_count);
    mismatches = 0;
    for (std::size_t k = 0; k < full_count; ++k)
      if (got[k] != sym[0][k] + sym[1][k]) ++mismatches;  // NaN (unwritten) mismatches too
    EXPECT_EQ(mismatches, 0U) << "m = " << m << ": unpacked sum";
  }
}

}  // namespace
}  // namespace kwm::lm
