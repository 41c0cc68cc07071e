// Checked HDF5 (serial, C API) for checkpoints: every call's status tested, every error a
// CheckpointError naming the file and the object. Arrays are float64, stored row-major as h5py
// and h5dump show them, chunked with the Fletcher32 checksum filter so a flipped byte fails the
// read.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace kwm::checkpoint {

class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Hdf5File {
 public:
  // create: a new file (fails when it exists); otherwise opened read-only.
  static Hdf5File create(const std::filesystem::path& path);
  static Hdf5File open(const std::filesystem::path& path);
  Hdf5File(Hdf5File&& other) noexcept;
  Hdf5File& operator=(Hdf5File&&) = delete;
  Hdf5File(const Hdf5File&) = delete;
  Hdf5File& operator=(const Hdf5File&) = delete;
  ~Hdf5File();

  const std::filesystem::path& path() const { return path_; }

  // Flush, close, then fsync the file's bytes to disk.
  void close_and_sync();

  // Datasets under absolute names ("/blocks/3/mean"); parent groups are created on the way.
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

 private:
  Hdf5File(std::filesystem::path path, std::int64_t id);
  [[noreturn]] void fail(const std::string& object, const std::string& what) const;
  void ensure_parent_groups(const std::string& name);

  std::filesystem::path path_;
  std::int64_t id_ = -1;  // hid_t
};

// fsync a directory (after a rename inside it, so the new name is durable).
void sync_directory(const std::filesystem::path& dir);

}  // namespace kwm::checkpoint
