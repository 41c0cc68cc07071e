// The checked HDF5 layer: XXH64 against the reference values, checksums caught on read with the
// file and dataset named, format-version-1 (Fletcher32) datasets still read, and hostile headers
// refused before anything is allocated; the metadata probe (a child process walks the metadata
// before kwm opens a file) turns HDF5's crashes and loops on saved fuzz inputs into errors, and
// refuses link cycles, external links and attributes holding more than one value.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <Eigen/Core>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "distributed/checkpoint/hdf5_file.hpp"
#include "distributed/checkpoint/metadata_probe.hpp"
#include "distributed/checkpoint/xxhash64.hpp"

namespace kwm::checkpoint {
namespace {
namespace fs = std::filesystem;

class Hdf5FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kwm-hdf5-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

std::uint64_t of(const std::string& s) { return xxh64(s.data(), s.size()); }

TEST(Xxh64, MatchesTheReferenceImplementation) {
  // Values printed by the reference xxHash (xxhsum -H64 / python-xxhash).
  EXPECT_EQ(of(""), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(of("a"), 0xD24EC4F1A98C6E5BULL);
  EXPECT_EQ(of("abc"), 0x44BC2CF5AD770999ULL);
  EXPECT_EQ(of("Nobody inspects the spammish repetition"), 0xFBCEA83C8A378BF1ULL);
}

TEST(Xxh64, StreamingInPiecesEqualsOneShot) {
  std::vector<unsigned char> bytes(1000);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(i * 37 + 11);
  for (const std::size_t piece : {1u, 3u, 7u, 31u, 32u, 33u, 100u, 999u}) {
    Xxh64 state;
    for (std::size_t at = 0; at < bytes.size(); at += piece)
      state.update(bytes.data() + at, std::min(piece, bytes.size() - at));
    EXPECT_EQ(state.digest(), xxh64(bytes.data(), bytes.size())) << "piece " << piece;
  }
  EXPECT_NE(xxh64(bytes.data(), bytes.size(), 1), xxh64(bytes.data(), bytes.size(), 0));
}

TEST_F(Hdf5FileTest, RoundTripsMatricesBytesAndAttributes) {
  const Eigen::MatrixXd m = Eigen::MatrixXd::Random(5, 3);
  // Written and read in slabs of about 4 MiB of whole rows: 300 x 2000 takes two.
  const Eigen::MatrixXd wide = Eigen::MatrixXd::Random(300, 2000);
  {
    Hdf5File f = Hdf5File::create(dir_ / "a.h5");
    f.write_matrix("/g/m", m);
    f.write_matrix("/g/wide", wide);
    f.write_matrix("/g/v", Eigen::VectorXd::LinSpaced(4, 0, 1));
    f.write_bytes("/g/b", "hello");
    f.write_bytes("/g/empty", "");
    f.set_attribute("/g", "k", std::int64_t{7});
    f.close_and_sync();
  }
  const Hdf5File f = Hdf5File::open(dir_ / "a.h5");
  EXPECT_EQ(f.read_matrix("/g/m"), m);
  EXPECT_EQ(f.read_matrix("/g/wide"), wide);
  EXPECT_EQ(f.read_matrix("/g/v").rows(), 4);
  EXPECT_EQ(f.read_bytes("/g/b"), "hello");
  EXPECT_EQ(f.read_bytes("/g/empty"), "");
  EXPECT_EQ(f.int_attribute("/g", "k"), 7);
  EXPECT_EQ(f.verify_all().size(), 5u);
}

// Flips one byte of the file at the first occurrence of `needle` (a value we wrote).
void flip_byte_at(const fs::path& path, const std::string& needle) {
  std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
  // Sized read rather than istreambuf_iterator, which GCC 13 -O3 -Wnull-dereference misreports.
  std::string bytes(static_cast<std::size_t>(fs::file_size(path)), '\0');
  io.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  io.clear();
  const auto at = bytes.find(needle);
  ASSERT_NE(at, std::string::npos);
  io.seekp(static_cast<std::streamoff>(at));
  io.put(static_cast<char>(bytes[at] ^ 0x40));
}

TEST_F(Hdf5FileTest, AFlippedByteIsReportedWithFileAndDataset) {
  {
    Hdf5File f = Hdf5File::create(dir_ / "c.h5");
    f.write_matrix("/blocks/3/covariance", Eigen::MatrixXd::Constant(4, 4, 0.125));
    f.write_bytes("/metrics/jsonl", "{\"split\":\"train\"}\n");
    f.close_and_sync();
  }
  flip_byte_at(dir_ / "c.h5", "split");
  const double eighth = 0.125;
  flip_byte_at(dir_ / "c.h5", std::string(reinterpret_cast<const char*>(&eighth), 8));
  const Hdf5File f = Hdf5File::open(dir_ / "c.h5");
  for (const std::string name : {"/blocks/3/covariance", "/metrics/jsonl"}) {
    try {
      if (name == "/metrics/jsonl")
        (void)f.read_bytes(name);
      else
        (void)f.read_matrix(name);
      FAIL() << name << ": the flipped byte went unnoticed";
    } catch (const CheckpointError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("c.h5: " + name + ": checksum mismatch"), std::string::npos) << what;
    }
  }
  EXPECT_THROW((void)f.verify_all(), CheckpointError);
}

TEST_F(Hdf5FileTest, ReadsFormatVersion1FletcherDatasetsAndRefusesUnchecked) {
  // A version-1 dataset: chunked, Fletcher32, no xxh64 attribute; and one with no checksum.
  const fs::path path = dir_ / "v1.h5";
  const double values[6] = {1, 2, 3, 4, 5, 6};
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t dims[2] = {2, 3};
  const hid_t space = H5Screate_simple(2, dims, nullptr);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  ASSERT_GE(H5Pset_chunk(dcpl, 2, dims), 0);
  ASSERT_GE(H5Pset_fletcher32(dcpl), 0);
  for (const auto& [name, plist] : {std::pair<const char*, hid_t>{"fletcher", dcpl},
                                    std::pair<const char*, hid_t>{"bare", H5P_DEFAULT}}) {
    const hid_t set =
        H5Dcreate2(file, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, plist, H5P_DEFAULT);
    ASSERT_GE(H5Dwrite(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), 0);
    H5Dclose(set);
  }
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Fclose(file);

  const Hdf5File f = Hdf5File::open(path);
  EXPECT_EQ(f.read_matrix("/fletcher")(1, 2), 6.0);
  try {
    (void)f.read_matrix("/bare");
    FAIL() << "a dataset without any checksum was accepted";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("v1.h5: /bare: no checksum"), std::string::npos)
        << e.what();
  }
}

TEST_F(Hdf5FileTest, RefusesANonHdf5FileAndADataspaceLargerThanTheFile) {
  std::ofstream(dir_ / "text.h5") << "not hdf5 at all";
  EXPECT_THROW((void)Hdf5File::open(dir_ / "text.h5"), CheckpointError);
  EXPECT_THROW((void)Hdf5File::open(dir_ / "absent.h5"), CheckpointError);

  // A declared 2^20 x 2^20 dataset that was never written: the reader must refuse it rather
  // than allocate 8 TiB.
  const fs::path path = dir_ / "huge.h5";
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t dims[2] = {hsize_t{1} << 20, hsize_t{1} << 20};
  const hid_t space = H5Screate_simple(2, dims, nullptr);
  const hid_t set =
      H5Dcreate2(file, "big", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dclose(set);
  H5Sclose(space);
  H5Fclose(file);
  try {
    (void)Hdf5File::open(path).read_matrix("/big");
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("larger than the file"), std::string::npos) << e.what();
  }
}

// The message of the CheckpointError `open` throws, or "" when it opens.
std::string open_error(const fs::path& path) {
  try {
    (void)Hdf5File::open(path);
    return "";
  } catch (const CheckpointError& e) {
    return e.what();
  }
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Inputs saved by tests/fuzz/run_fuzzers.sh on which HDF5 1.10.8 itself crashes (memcpy with
// overlapping buffers on a damaged link table, a segfault without ASan) or loops (the metadata
// cache under H5HG_read, reading a string attribute).
const fs::path kFixtures = KWM_CHECKPOINT_FIXTURES;

TEST_F(Hdf5FileTest, TheProbeTurnsAnHdf5CrashIntoAnErrorNamingTheFile) {
  for (const char* name : {"hdf5-crash-rank.h5", "hdf5-crash-index.h5"}) {
    const fs::path path = dir_ / name;
    fs::copy_file(kFixtures / name, path);
    const std::string error = open_error(path);
    EXPECT_TRUE(contains(error, path.string() + ": HDF5 crashed (")) << error;
    EXPECT_TRUE(contains(error, "the file is corrupt")) << error;
    // One line: the child's report (HDF5's, a sanitizer's) stays in the child.
    EXPECT_FALSE(contains(error, "\n")) << error;
  }
}

TEST_F(Hdf5FileTest, TheProbeStopsAnHdf5LoopAfterItsTimeout) {
  const fs::path path = dir_ / "index.h5";
  fs::copy_file(kFixtures / "hdf5-loop-index.h5", path);
  ::setenv("KWM_CHECKPOINT_PROBE_TIMEOUT_S", "1", 1);
  const auto start = std::chrono::steady_clock::now();
  const std::string error = open_error(path);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::unsetenv("KWM_CHECKPOINT_PROBE_TIMEOUT_S");
  EXPECT_TRUE(contains(error, path.string() + ": HDF5 did not finish reading the file's metadata "
                                              "within 1 s"))
      << error;
  EXPECT_LT(seconds, 10.0);
}

TEST_F(Hdf5FileTest, TheProbePassesAGoodFileAndReportsTheReadersOwnErrors) {
  {
    Hdf5File f = Hdf5File::create(dir_ / "good.h5");
    f.write_matrix("/blocks/0/mean", Eigen::VectorXd::Ones(3));
    f.set_attribute("/blocks/0", "kind", std::string("dense"));
    f.set_attribute("/", "step", std::int64_t{7});
    f.close_and_sync();
  }
  EXPECT_EQ(open_error(dir_ / "good.h5"), "");
  EXPECT_EQ(Hdf5File::open(dir_ / "good.h5").walk_metadata(), 4);  // /, /blocks, /blocks/0, mean
  probe_metadata({dir_ / "good.h5", dir_ / "good.h5"});

  // A hard link from a group back to its parent: the readers' recursion would never end.
  const fs::path cycle = dir_ / "cycle.h5";
  fs::copy_file(dir_ / "good.h5", cycle);
  hid_t file = H5Fopen(cycle.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Lcreate_hard(file, "/blocks", file, "/blocks/0/back", H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(file);
  EXPECT_TRUE(contains(open_error(cycle), "a link cycle")) << open_error(cycle);

  // An external link would make HDF5 open another file.
  const fs::path external = dir_ / "external.h5";
  fs::copy_file(dir_ / "good.h5", external);
  file = H5Fopen(external.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Lcreate_external("/etc/hostname", "/", file, "/blocks/elsewhere", H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(file);
  EXPECT_TRUE(contains(open_error(external), "/blocks/elsewhere: an external"))
      << open_error(external);

  // An attribute of three values where the reader holds one (it would write past it).
  file = H5Fopen((dir_ / "good.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hsize_t three = 3;
  const hid_t space = H5Screate_simple(1, &three, nullptr);
  const hid_t attr = H5Acreate2(file, "world_size", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  const std::int64_t values[3] = {1, 2, 3};
  H5Awrite(attr, H5T_NATIVE_INT64, values);
  H5Aclose(attr);
  H5Sclose(space);
  H5Fclose(file);
  try {
    (void)Hdf5File::open(dir_ / "good.h5").int_attribute("/", "world_size");
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_TRUE(contains(e.what(), "does not hold exactly one value")) << e.what();
  }
}

}  // namespace
}  // namespace kwm::checkpoint
