// Counter-based draws that host and device code compute alike: the k-th output of a SplitMix64
// generator is a pure function of (stream, k), so the i-th coordinate of a direction can be drawn
// by whichever thread or rank needs it, in any order, without a generator's sequential state.
// MeZO's directions use it (z has one coordinate per parameter: 11.6M on the 10M GPT, drawn three
// times per step on the GPU, core/lm/cuda/mezo_cuda.cpp). Plain C++ plus CUDA qualifiers, no
// Eigen, so .cu files include it.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define KWM_HOST_DEVICE __host__ __device__
#else
#define KWM_HOST_DEVICE
#endif

namespace kwm::lm {

inline constexpr std::uint64_t kSplitMixGamma = 0x9e3779b97f4a7c15ULL;

// SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mix of x + gamma.
KWM_HOST_DEVICE inline std::uint64_t splitmix64(std::uint64_t x) {
  x += kSplitMixGamma;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Output k (k = 0, 1, ...) of the SplitMix64 generator seeded with `stream`.
KWM_HOST_DEVICE inline std::uint64_t splitmix64_at(std::uint64_t stream, std::uint64_t k) {
  return splitmix64(stream + k * kSplitMixGamma);  // wraps mod 2^64, as the generator's state does
}

// Draw i of N(0, 1) from `stream`: Box-Muller on outputs 2p and 2p + 1 (p = i / 2), the cosine
// branch for even i and the sine branch for odd i, so draws 2p and 2p + 1 are independent.
// u1 in (0, 1] keeps the logarithm finite; 53-bit uniforms. Host and device libm may differ in
// the last bit of log/sin/cos, so the two agree to about 1e-15 relative, not bitwise.
KWM_HOST_DEVICE inline double counter_normal(std::uint64_t stream, std::uint64_t i) {
  const std::uint64_t p = i >> 1;
  const double u1 = (static_cast<double>(splitmix64_at(stream, 2 * p) >> 11) + 1.0) * 0x1.0p-53;
  const double u2 = static_cast<double>(splitmix64_at(stream, 2 * p + 1) >> 11) * 0x1.0p-53;
  const double radius = ::sqrt(-2.0 * ::log(u1));
  const double angle = 6.283185307179586476925286766559 * u2;
  return (i & 1) ? radius * ::sin(angle) : radius * ::cos(angle);
}

}  // namespace kwm::lm
