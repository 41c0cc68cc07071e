// XXH64 (Yann Collet's xxHash, 64-bit variant, as specified in xxhash's doc/xxhash_spec.md): the
// checksum every checkpoint dataset carries since format version 2. Chosen over Fletcher32 (an
// HDF5 filter that forces small chunks and runs a byte-at-a-time loop, ~0.3 GB/s here) and over
// zlib's crc32 (~1 GB/s, 32 bits): it reads 8-byte words in four independent lanes, so it runs
// near memory speed and costs little against disk writes, and a 64-bit value makes an
// accidental match negligible. Any other implementation gives the same value, so h5py users can
// check a dataset with `xxhash.xxh64(ds[()].tobytes()).intdigest()`.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kwm::checkpoint {

// Streaming XXH64: update() with consecutive pieces, digest() any time; equal to the one-shot
// value of the concatenated bytes.
class Xxh64 {
 public:
  explicit Xxh64(std::uint64_t seed = 0);
  void update(const void* data, std::size_t bytes);
  std::uint64_t digest() const;

 private:
  std::uint64_t lanes_[4];
  std::uint64_t seed_;
  std::uint64_t total_ = 0;
  unsigned char pending_[32];  // a partial 32-byte stripe
  std::size_t pending_size_ = 0;
};

std::uint64_t xxh64(const void* data, std::size_t bytes, std::uint64_t seed = 0);

}  // namespace kwm::checkpoint
