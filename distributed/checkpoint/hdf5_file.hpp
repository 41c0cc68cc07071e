// Checked HDF5 (serial, C API) for checkpoints: every call's status tested, every error a
// CheckpointError naming the file and the object. Datasets are contiguous (no chunks, no
// filters) and carry the XXH64 of their stored bytes as the uint64 attribute "xxh64", checked on
// every read, so a flipped byte fails the read naming file and dataset. Matrices are float64,
// stored row-major as h5py and h5dump show them. Datasets written by format version 1 (chunked,
// Fletcher32, no attribute) are still read: HDF5 checks their chunks.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace kwm::checkpoint {

class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The dataset attribute holding the XXH64 (seed 0) of the dataset's bytes as stored.
inline constexpr const char* kChecksumAttribute = "xxh64";

class Hdf5File {
 public:
  // create: a new file (fails when it exists). open: read-only, after checking the HDF5
  // signature ourselves and then letting a separate process walk the file's metadata first
  // (metadata_probe.hpp): HDF5 1.10 can crash or loop on corrupt metadata, and that must end
  // in a CheckpointError naming the file, not in the death of kwm. open_unprobed skips the
  // probe: for the probe itself and for the fuzz targets that exercise HDF5 directly.
  static Hdf5File create(const std::filesystem::path& path);
  static Hdf5File open(const std::filesystem::path& path);
  static Hdf5File open_unprobed(const std::filesystem::path& path);
  Hdf5File(Hdf5File&& other) noexcept;
  Hdf5File& operator=(Hdf5File&&) = delete;
  Hdf5File(const Hdf5File&) = delete;
  Hdf5File& operator=(const Hdf5File&) = delete;
  ~Hdf5File();

  const std::filesystem::path& path() const { return path_; }

  // Flush, close, then fsync the file's bytes to disk.
  void close_and_sync();

  // Datasets under absolute names ("/blocks/3/mean"); parent groups are created on the way.
  // Reads verify the checksum and refuse a dataspace larger than the file.
  void write_matrix(const std::string& name, const Eigen::MatrixXd& value);
  void write_bytes(const std::string& name, const std::string& bytes);
  bool exists(const std::string& name) const;
  Eigen::MatrixXd read_matrix(const std::string& name) const;
  std::string read_bytes(const std::string& name) const;
  // Dataset shape without reading it (rows, cols).
  std::pair<std::int64_t, std::int64_t> shape(const std::string& name) const;
  // Reads every dataset under `group` (recursively), checking each checksum; returns the names.
  std::vector<std::string> verify_all(const std::string& group = "/") const;

  // Attributes on an object (group or dataset; "/" for the file).
  void set_attribute(const std::string& object, const std::string& key, std::int64_t value);
  void set_attribute(const std::string& object, const std::string& key, double value);
  void set_attribute(const std::string& object, const std::string& key, const std::string& value);
  std::int64_t int_attribute(const std::string& object, const std::string& key) const;
  double double_attribute(const std::string& object, const std::string& key) const;
  std::string string_attribute(const std::string& object, const std::string& key) const;

  // Names of the members of a group.
  std::vector<std::string> members(const std::string& group) const;

  // Touches every piece of metadata the readers above can touch, without reading any dataset's
  // elements: every group and its link table, every object header, every attribute's value
  // (variable-length strings from the global heap included), every dataset's type, dataspace,
  // creation properties and chunk index. Refuses external or user-defined links and an object
  // reachable twice (a cycle) with a CheckpointError. Returns the number of objects walked.
  std::int64_t walk_metadata() const;

 private:
  Hdf5File(std::filesystem::path path, std::int64_t id);
  [[noreturn]] void fail(const std::string& object, const std::string& what) const;
  // An attribute holding exactly one value (hid_t; closed by the caller).
  std::int64_t open_scalar_attribute(const std::string& object, const std::string& key) const;
  void ensure_parent_groups(const std::string& name);
  // Row-major bytes of rows [first, first + count) of the dataset being written.
  using SlabSource = std::function<const void*(std::uint64_t first, std::uint64_t count)>;
  // type, memory_type: hid_t; rank 1 or 2.
  void write_dataset(const std::string& name, std::int64_t type, std::int64_t memory_type, int rank,
                     const std::uint64_t* dims, std::uint64_t slab_rows, const SlabSource& slab);
  // Compares `computed` (XXH64 of the bytes read) with the dataset's attribute; a version-1
  // dataset without one must carry the Fletcher32 filter (which H5Dread has then checked).
  void verify_checksum(const std::string& name, std::int64_t set, std::uint64_t computed) const;

  std::filesystem::path path_;
  std::int64_t id_ = -1;                          // hid_t
  std::uint64_t file_bytes_ = ~std::uint64_t{0};  // size on disk (opened files)
};

// fsync a directory (after a rename inside it, so the new name is durable).
void sync_directory(const std::filesystem::path& dir);

}  // namespace kwm::checkpoint
