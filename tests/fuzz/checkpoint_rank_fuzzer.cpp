// libFuzzer target: arbitrary bytes as a checkpoint's rank-R.h5. Every block group is read as
// load_checkpoint reads it (mean, covariance or information, counters, gain, shapes checked);
// only CheckpointError may come out. Built twice, guarded and raw, as checkpoint_index_fuzzer.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>

#include "distributed/checkpoint/checkpoint_index.hpp"
#include "tests/fuzz/fuzz_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kwm::checkpoint;
  try {
    const Hdf5File file = kwm::fuzz::open_input(data, size);
    for (const std::string& id : file.members("/blocks")) {
      if (id.empty() || id.size() > 9 ||
          !std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isdigit(c); }))
        continue;
      const std::int64_t block = std::stoll(id);
      // The index would give the size; the mean's length stands in for it here.
      const std::int64_t n = file.shape(block_group(block) + "/mean").first;
      (void)read_block(file, block, n);
    }
    (void)file.verify_all();
  } catch (const CheckpointError&) {
  }
  return 0;
}
