// Checkpoint write and read throughput (issue 5): dense fp64 covariance blocks written through
// the checkpoint writer's own HDF5 path (Hdf5File::write_matrix: contiguous dataset plus its
// XXH64 attribute, format version 2; then close_and_sync: flush, close, fsync; then the
// step-N.tmp -> step-N rename and directory fsync, as write_checkpoint does), read back and
// checked (read_matrix recomputes every dataset's XXH64; the values are compared too), against dd
// writing and reading the same number of bytes in the same folder in the same run. Page cache
// dropped before each write and read where permitted.
//
//   kwm_checkpoint_bench --dir DIR [--gib 4] [--n 4096] [--files 1] [--h5-chunk-mib M]
//
// --h5-chunk-mib M adds a diagnostic pass through the HDF5 C API with M MiB chunks (with and
// without Fletcher32, format version 1's checksum); the writer itself no longer chunks.
#include <hdf5.h>

#include <Eigen/Core>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "distributed/checkpoint/hdf5_file.hpp"
#include "distributed/checkpoint/xxhash64.hpp"

namespace fs = std::filesystem;
using kwm::checkpoint::Hdf5File;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// sync, then drop the page cache; false when not permitted.
bool drop_caches() {
  if (std::system("sync") != 0) return false;
  std::ofstream f("/proc/sys/vm/drop_caches");
  if (!f) return false;
  f << "3\n";
  f.flush();
  return static_cast<bool>(f);
}

double run_timed(const std::string& cmd) {
  const double t0 = now_s();
  if (std::system(cmd.c_str()) != 0) {
    std::cerr << "failed: " << cmd << "\n";
    std::exit(1);
  }
  return now_s() - t0;
}

std::string block_name(int b) { return "/blocks/" + std::to_string(b) + "/covariance"; }

// Block b: the base matrix with a per-block stamp, so a misplaced block fails the comparison.
void stamp(Eigen::MatrixXd& m, int b) {
  m(0, 0) = static_cast<double>(b);
  m(m.rows() - 1, m.cols() - 1) = -static_cast<double>(b);
}

void h5check(bool ok, const char* what) {
  if (!ok) {
    std::cerr << "HDF5 failed: " << what << "\n";
    std::exit(1);
  }
}

// Diagnostic: the same layout through the C API with a chosen chunk size and optional Fletcher32.
double raw_h5_write(const fs::path& path, const Eigen::MatrixXd& base, int blocks,
                    hsize_t chunk_rows, bool fletcher) {
  const double t0 = now_s();
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
  h5check(file >= 0, "create");
  const hsize_t n = static_cast<hsize_t>(base.rows());
  Eigen::MatrixXd m = base;
  for (int b = 0; b < blocks; ++b) {
    stamp(m, b);
    const hsize_t dims[2] = {n, n};
    const hsize_t chunk[2] = {std::min(chunk_rows, n), n};
    const hid_t space = H5Screate_simple(2, dims, nullptr);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    h5check(H5Pset_chunk(dcpl, 2, chunk) >= 0, "chunk");
    if (fletcher) h5check(H5Pset_fletcher32(dcpl) >= 0, "fletcher32");
    const std::string name = "b" + std::to_string(b);
    const hid_t set =
        H5Dcreate2(file, name.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    h5check(set >= 0, "dataset");
    // Symmetric covariance: column-major storage is its own row-major transpose.
    h5check(H5Dwrite(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.data()) >= 0,
            "write");
    H5Dclose(set);
    H5Pclose(dcpl);
    H5Sclose(space);
  }
  h5check(H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0 && H5Fclose(file) >= 0, "close");
  if (std::system(("sync -f " + path.string()).c_str()) != 0) std::exit(1);
  return now_s() - t0;
}

double raw_h5_read(const fs::path& path, int blocks, hsize_t n) {
  const double t0 = now_s();
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  h5check(file >= 0, "open");
  Eigen::MatrixXd m(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(n));
  for (int b = 0; b < blocks; ++b) {
    const std::string name = "b" + std::to_string(b);
    const hid_t set = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
    h5check(set >= 0, "open dataset");
    h5check(H5Dread(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.data()) >= 0,
            "read (checksum)");
    h5check(m(0, 0) == static_cast<double>(b), "stamp");
    H5Dclose(set);
  }
  H5Fclose(file);
  return now_s() - t0;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path dir;
  double gib = 4.0;
  long n = 4096;
  int files = 1;
  double chunk_mib = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const std::string v = argv[i + 1];
    if (a == "--dir")
      dir = v;
    else if (a == "--gib")
      gib = std::stod(v);
    else if (a == "--n")
      n = std::stol(v);
    else if (a == "--files")
      files = std::stoi(v);
    else if (a == "--h5-chunk-mib")
      chunk_mib = std::stod(v);
    else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }
  if (dir.empty()) {
    std::cerr << "usage: kwm_checkpoint_bench --dir DIR [--gib 4] [--n 4096] [--files 1]"
                 " [--h5-chunk-mib M]\n";
    return 2;
  }
  const double block_bytes = static_cast<double>(n) * static_cast<double>(n) * 8.0;
  const int blocks = static_cast<int>(gib * 1073741824.0 / block_bytes + 0.5);
  const double bytes = blocks * block_bytes;
  const double gb = bytes / 1e9;
  fs::create_directories(dir);
  const fs::path tmp = dir / "step-1.tmp";
  const fs::path fin = dir / "step-1";
  fs::remove_all(tmp);
  fs::remove_all(fin);

  // A symmetric, non-constant base matrix (the covariance); each block stamps it.
  Eigen::MatrixXd base(n, n);
  for (long j = 0; j < n; ++j)
    for (long i = 0; i < n; ++i)
      base(i, j) = 1.0 / (1.0 + static_cast<double>(i + j)) + (i == j ? 1.0 : 0.0);
  std::printf("blocks %d of n = %ld fp64 (%.1f MiB each), %.3f GB in %d file(s), dir %s\n", blocks,
              n, block_bytes / 1048576.0, gb, files, dir.c_str());

  // The checksum alone, in memory (what the write and the read add to the I/O).
  {
    const double h0 = now_s();
    std::uint64_t sum = 0;
    for (int r = 0; r < 8; ++r)
      sum += kwm::checkpoint::xxh64(base.data(), std::size_t(block_bytes));
    const double h = now_s() - h0;
    std::printf("xxh64 in memory: %.2f GB/s (digest %016llx)\n", 8.0 * block_bytes / 1e9 / h,
                static_cast<unsigned long long>(sum));
  }

  // --- checkpoint write: write_matrix per block, close_and_sync per file, rename, dir fsync.
  drop_caches();
  Eigen::MatrixXd m = base;
  double t0 = now_s();
  fs::create_directories(tmp);
  for (int f = 0; f < files; ++f) {
    Hdf5File h5 = Hdf5File::create(tmp / ("rank-" + std::to_string(f) + ".h5"));
    for (int b = f; b < blocks; b += files) {
      stamp(m, b);
      h5.write_matrix(block_name(b), m);
    }
    h5.close_and_sync();
  }
  kwm::checkpoint::sync_directory(tmp);
  fs::rename(tmp, fin);
  kwm::checkpoint::sync_directory(dir);
  const double ck_write = now_s() - t0;
  std::uintmax_t ck_file_bytes = 0;
  for (const auto& e : fs::directory_iterator(fin)) ck_file_bytes += e.file_size();

  // --- checkpoint read (resume equivalent): read_matrix (Fletcher32 checked) + compare.
  const bool dropped = drop_caches();
  t0 = now_s();
  for (int f = 0; f < files; ++f) {
    const Hdf5File h5 = Hdf5File::open(fin / ("rank-" + std::to_string(f) + ".h5"));
    for (int b = f; b < blocks; b += files) {
      const Eigen::MatrixXd r = h5.read_matrix(block_name(b));
      stamp(m, b);
      if (r.rows() != n || std::memcmp(r.data(), m.data(), static_cast<size_t>(block_bytes))) {
        std::cerr << "block " << b << " differs after the round trip\n";
        return 1;
      }
    }
  }
  const double ck_read = now_s() - t0;

  // --- verify_all alone (what a checkpoint check reads), cache dropped again.
  drop_caches();
  t0 = now_s();
  std::size_t verified = 0;
  for (int f = 0; f < files; ++f)
    verified += Hdf5File::open(fin / ("rank-" + std::to_string(f) + ".h5")).verify_all("/").size();
  const double ck_verify = now_s() - t0;
  fs::remove_all(fin);

  // --- dd on the same folder, same bytes (16 MiB blocks).
  const long count = static_cast<long>(bytes / 16777216.0 + 0.5);
  const std::string ddf = (dir / "dd.bin").string();
  drop_caches();
  const double dd_fsync =
      run_timed("dd if=/dev/zero of=" + ddf + " bs=16M count=" + std::to_string(count) +
                " conv=fsync status=none");
  drop_caches();
  const double dd_read = run_timed("dd if=" + ddf + " of=/dev/null bs=16M status=none");
  fs::remove(ddf);
  drop_caches();
  const double dd_direct =
      run_timed("dd if=/dev/zero of=" + ddf + " bs=16M count=" + std::to_string(count) +
                " oflag=direct status=none");
  drop_caches();
  const double dd_read_direct =
      run_timed("dd if=" + ddf + " of=/dev/null bs=16M iflag=direct status=none");
  fs::remove(ddf);
  const double dd_gb = static_cast<double>(count) * 16777216.0 / 1e9;

  std::printf("page cache dropped before reads: %s\n", dropped ? "yes" : "NO (not permitted)");
  std::printf("checkpoint file bytes %.3f GB (payload %.3f GB, overhead %.3f%%)\n",
              static_cast<double>(ck_file_bytes) / 1e9, gb,
              100.0 * (static_cast<double>(ck_file_bytes) / bytes - 1.0));
  std::printf("checkpoint write+fsync+rename : %7.2f s  %6.3f GB/s\n", ck_write, gb / ck_write);
  std::printf("checkpoint read+check (resume): %7.2f s  %6.3f GB/s\n", ck_read, gb / ck_read);
  std::printf("verify_all (%zu datasets)     : %7.2f s  %6.3f GB/s\n", verified, ck_verify,
              gb / ck_verify);
  std::printf("dd write conv=fsync           : %7.2f s  %6.3f GB/s\n", dd_fsync, dd_gb / dd_fsync);
  std::printf("dd write oflag=direct         : %7.2f s  %6.3f GB/s\n", dd_direct,
              dd_gb / dd_direct);
  std::printf("dd read                       : %7.2f s  %6.3f GB/s\n", dd_read, dd_gb / dd_read);
  std::printf("dd read iflag=direct          : %7.2f s  %6.3f GB/s\n", dd_read_direct,
              dd_gb / dd_read_direct);
  std::printf(
      "ratio write ck/dd(fsync) %.2f, ck/dd(direct) %.2f; read ck/dd %.2f, ck/dd(direct) "
      "%.2f\n",
      (gb / ck_write) / (dd_gb / dd_fsync), (gb / ck_write) / (dd_gb / dd_direct),
      (gb / ck_read) / (dd_gb / dd_read), (gb / ck_read) / (dd_gb / dd_read_direct));

  if (chunk_mib > 0) {
    const hsize_t rows = std::max<hsize_t>(
        1, static_cast<hsize_t>(chunk_mib * 1048576.0 / (8.0 * static_cast<double>(n))));
    for (const bool fl : {true, false}) {
      const fs::path p = dir / "chunk.h5";
      fs::remove(p);
      drop_caches();
      const double w = raw_h5_write(p, base, blocks, rows, fl);
      drop_caches();
      const double r = raw_h5_read(p, blocks, static_cast<hsize_t>(n));
      fs::remove(p);
      std::printf(
          "C API %.0f MiB chunks, fletcher32 %s: write %6.3f GB/s (%.2f of dd fsync), "
          "read %6.3f GB/s\n",
          chunk_mib, fl ? "on " : "off", gb / w, (gb / w) / (dd_gb / dd_fsync), gb / r);
    }
  }
  return 0;
}
