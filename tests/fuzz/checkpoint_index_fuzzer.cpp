// libFuzzer target: arbitrary bytes as a checkpoint's index.h5. The reader must end in a
// CheckpointError (naming the file) or succeed; any other exception, a crash or a sanitizer
// report is a finding. Built twice: checkpoint_index_guarded_fuzzer opens as kwm does (the
// metadata probe first), checkpoint_index_fuzzer lets HDF5 parse in-process (fuzz_file.hpp).
#include <cstddef>
#include <cstdint>

#include "distributed/checkpoint/checkpoint_index.hpp"
#include "tests/fuzz/fuzz_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kwm::checkpoint;
  try {
    const Hdf5File index = kwm::fuzz::open_input(data, size);
    (void)read_index(index);
    (void)index.verify_all();
  } catch (const CheckpointError&) {
  }
  return 0;
}
