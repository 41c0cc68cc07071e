// The guarded metadata probe. HDF5 1.10 (Debian's libhdf5-103) can crash, loop or corrupt memory
// on hostile metadata (link tables, variable-length string attributes, the global heap:
// docs/fuzzing.md) before it returns an error. So before kwm opens a checkpoint file with HDF5,
// a separate process (the small program kwm-checkpoint-probe) opens it and walks exactly the
// metadata the readers touch (Hdf5File::walk_metadata), reading no dataset elements (those are
// covered by the XXH64 checksums). Its crash, hang or failure becomes a CheckpointError naming
// the file; kwm itself never sees the bad metadata. Hdf5File::open calls it.
#pragma once

#include <filesystem>
#include <vector>

namespace kwm::checkpoint {

// The probe program's file name: installed beside kwm, built beside it in the build tree.
inline constexpr const char* kProbeProgram = "kwm-checkpoint-probe";

// Seconds the probe may take before it is killed (an HDF5 loop); KWM_CHECKPOINT_PROBE_TIMEOUT_S
// overrides it (a positive number of seconds).
inline constexpr double kProbeTimeoutSeconds = 30.0;

// Runs the probe over `files` in one child process and waits for it. Returns when every file's
// metadata was walked without a problem; otherwise throws CheckpointError naming the file and
// what happened, e.g. "<dir>/rank-1.h5: HDF5 crashed (SIGSEGV) reading the file's metadata; the
// file is corrupt". The child's own output (an HDF5 or sanitizer report) is captured and only a
// one-line summary is kept. Nothing is written or deleted.
void probe_metadata(const std::vector<std::filesystem::path>& files);

// The probe program's main (distributed/checkpoint/probe_main.cpp): walks each file given on the
// command line. Exit status 0: all walked; 3: a clean CheckpointError, its message on stdout
// after "error ". Before each file it prints "file <path>", so the parent knows which one a
// crash happened in.
int run_metadata_probe(int argc, char** argv);

}  // namespace kwm::checkpoint
