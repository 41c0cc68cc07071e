// Checked HDF5 wrappers: one place where the C API's status codes become CheckpointErrors.
#include "distributed/checkpoint/hdf5_file.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace kwm::checkpoint {
namespace {

// The innermost message on HDF5's error stack (e.g. the Fletcher32 checksum failure), so the
// CheckpointError says why, not only where. Automatic printing is off: one line per error.
std::string hdf5_reason() {
  std::string reason;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned, const H5E_error2_t* err, void* data) -> herr_t {
        auto* out = static_cast<std::string*>(data);
        if (out->empty() && err && err->desc) *out = err->desc;
        return 0;
      },
      &reason);
  H5Eclear2(H5E_DEFAULT);
  return reason;
}

void quiet_hdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

// Closes an HDF5 identifier of any kind (file objects, lists, spaces, types) when it leaves scope.
class Plain {
 public:
  explicit Plain(hid_t id) : id_(id) {}
  Plain(const Plain&) = delete;
  Plain& operator=(const Plain&) = delete;
  ~Plain() {
    if (id_ >= 0) H5Idec_ref(id_);
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
};

hsize_t chunk_extent(hsize_t n, hsize_t limit) { return std::max<hsize_t>(1, std::min(n, limit)); }

}  // namespace

Hdf5File::Hdf5File(std::filesystem::path path, std::int64_t id) : path_(std::move(path)), id_(id) {}

Hdf5File::Hdf5File(Hdf5File&& other) noexcept : path_(std::move(other.path_)), id_(other.id_) {
  other.id_ = -1;
}

Hdf5File::~Hdf5File() {
  if (id_ >= 0) H5Fclose(id_);
}

void Hdf5File::fail(const std::string& object, const std::string& what) const {
  const std::string reason = hdf5_reason();
  throw CheckpointError(path_.string() + (object.empty() ? "" : ": " + object) + ": " + what +
                        (reason.empty() ? "" : " (" + reason + ")"));
}

Hdf5File Hdf5File::create(const std::filesystem::path& path) {
  quiet_hdf5();
  Plain fapl(H5Pcreate(H5P_FILE_ACCESS));
  // 1.8 object format: large attributes (the config YAML) go to dense storage; h5py reads it.
  if (!fapl.ok() || H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0)
    throw CheckpointError(path.string() + ": cannot set up a file access list");
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get());
  if (id < 0)
    throw CheckpointError(path.string() + ": cannot create the HDF5 file (" + hdf5_reason() + ")");
  return Hdf5File(path, id);
}

Hdf5File Hdf5File::open(const std::filesystem::path& path) {
  quiet_hdf5();
  if (!std::filesystem::exists(path)) throw CheckpointError(path.string() + ": missing file");
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0)
    throw CheckpointError(
        path.string() + ": not a readable HDF5 file (truncated or corrupt: " + hdf5_reason() + ")");
  return Hdf5File(path, id);
}

void Hdf5File::close_and_sync() {
  if (H5Fflush(id_, H5F_SCOPE_GLOBAL) < 0) fail("", "flush failed");
  if (H5Fclose(id_) < 0) fail("", "close failed");
  id_ = -1;
  const int fd = ::open(path_.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    throw CheckpointError(path_.string() + ": fsync failed: " + why);
  }
  ::close(fd);
}

void Hdf5File::ensure_parent_groups(const std::string& name) {
  for (std::size_t at = name.find('/', 1); at != std::string::npos; at = name.find('/', at + 1)) {
    const std::string group = name.substr(0, at);
    const htri_t present = H5Lexists(id_, group.c_str(), H5P_DEFAULT);
    if (present < 0) fail(group, "cannot look up the group");
    if (present > 0) continue;
    Plain g(H5Gcreate2(id_, group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (!g.ok()) fail(group, "cannot create the group");
  }
}

void Hdf5File::write_matrix(const std::string& name, const Eigen::MatrixXd& value) {
  ensure_parent_groups(name);
  const hsize_t dims[2] = {static_cast<hsize_t>(value.rows()), static_cast<hsize_t>(value.cols())};
  Plain space(H5Screate_simple(2, dims, nullptr));
  Plain dcpl(H5Pcreate(H5P_DATASET_CREATE));
  if (!space.ok() || !dcpl.ok()) fail(name, "cannot create a dataspace");
  if (value.size() > 0) {
    // Chunks of about 1 MiB of whole rows (Fletcher32 needs a chunked layout).
    const hsize_t cols = chunk_extent(dims[1], hsize_t{1} << 17);
    const hsize_t rows = chunk_extent(dims[0], std::max<hsize_t>(1, (hsize_t{1} << 17) / cols));
    const hsize_t chunk[2] = {rows, cols};
    if (H5Pset_chunk(dcpl.get(), 2, chunk) < 0 || H5Pset_fletcher32(dcpl.get()) < 0)
      fail(name, "cannot set chunking and the Fletcher32 checksum");
  }
  Plain set(H5Dcreate2(id_, name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, dcpl.get(),
                       H5P_DEFAULT));
  if (!set.ok()) fail(name, "cannot create the dataset");
  if (value.size() == 0) return;
  const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = value;
  if (H5Dwrite(set.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, row_major.data()) < 0)
    fail(name, "write failed");
}

void Hdf5File::write_bytes(const std::string& name, const std::string& bytes) {
  ensure_parent_groups(name);
  const hsize_t dims[1] = {static_cast<hsize_t>(bytes.size())};
  Plain space(H5Screate_simple(1, dims, nullptr));
  Plain dcpl(H5Pcreate(H5P_DATASET_CREATE));
  if (!space.ok() || !dcpl.ok()) fail(name, "cannot create a dataspace");
  if (!bytes.empty()) {
    const hsize_t chunk[1] = {chunk_extent(dims[0], hsize_t{1} << 20)};
    if (H5Pset_chunk(dcpl.get(), 1, chunk) < 0 || H5Pset_fletcher32(dcpl.get()) < 0)
      fail(name, "cannot set chunking and the Fletcher32 checksum");
  }
  Plain set(H5Dcreate2(id_, name.c_str(), H5T_STD_U8LE, space.get(), H5P_DEFAULT, dcpl.get(),
                       H5P_DEFAULT));
  if (!set.ok()) fail(name, "cannot create the dataset");
  if (bytes.empty()) return;
  if (H5Dwrite(set.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()) < 0)
    fail(name, "write failed");
}

bool Hdf5File::exists(const std::string& name) const {
  // Every parent must exist before H5Lexists may be asked about the child.
  for (std::size_t at = name.find('/', 1);; at = name.find('/', at + 1)) {
    const std::string part = at == std::string::npos ? name : name.substr(0, at);
    const htri_t present = H5Lexists(id_, part.c_str(), H5P_DEFAULT);
    if (present < 0) fail(part, "cannot look up the object");
    if (present == 0) return false;
    if (at == std::string::npos) return true;
  }
}

std::pair<std::int64_t, std::int64_t> Hdf5File::shape(const std::string& name) const {
  Plain set(H5Dopen2(id_, name.c_str(), H5P_DEFAULT));
  if (!set.ok()) fail(name, "missing or unreadable dataset");
  Plain space(H5Dget_space(set.get()));
  hsize_t dims[2] = {0, 1};
  const int rank = space.ok() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  if (rank < 1 || rank > 2 || H5Sget_simple_extent_dims(space.get(), dims, nullptr) < 0)
    fail(name, "unexpected dataspace");
  return {static_cast<std::int64_t>(dims[0]), static_cast<std::int64_t>(rank == 2 ? dims[1] : 1)};
}

Eigen::MatrixXd Hdf5File::read_matrix(const std::string& name) const {
  const auto [rows, cols] = shape(name);
  Plain set(H5Dopen2(id_, name.c_str(), H5P_DEFAULT));
  if (!set.ok()) fail(name, "missing or unreadable dataset");
  Plain type(H5Dget_type(set.get()));
  if (!type.ok() || H5Tget_class(type.get()) != H5T_FLOAT || H5Tget_size(type.get()) != 8)
    fail(name, "expected a float64 dataset");
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major(rows, cols);
  if (rows * cols > 0 &&
      H5Dread(set.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, row_major.data()) < 0)
    fail(name, "read failed: checksum mismatch or corrupt data");
  return row_major;
}

std::string Hdf5File::read_bytes(const std::string& name) const {
  const auto [size, one] = shape(name);
  (void)one;
  Plain set(H5Dopen2(id_, name.c_str(), H5P_DEFAULT));
  if (!set.ok()) fail(name, "missing or unreadable dataset");
  std::string bytes(static_cast<std::size_t>(size), '\0');
  if (size > 0 &&
      H5Dread(set.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()) < 0)
    fail(name, "read failed: checksum mismatch or corrupt data");
  return bytes;
}

std::vector<std::string> Hdf5File::verify_all(const std::string& group) const {
  std::vector<std::string> checked;
  for (const std::string& member : members(group)) {
    const std::string name = (group == "/" ? "" : group) + "/" + member;
    H5O_info_t info;
    if (H5Oget_info_by_name(id_, name.c_str(), &info, H5P_DEFAULT) < 0)
      fail(name, "cannot inspect the object");
    if (info.type == H5O_TYPE_GROUP) {
      const auto inner = verify_all(name);
      checked.insert(checked.end(), inner.begin(), inner.end());
    } else if (info.type == H5O_TYPE_DATASET) {
      Plain set(H5Dopen2(id_, name.c_str(), H5P_DEFAULT));
      Plain type(set.ok() ? H5Dget_type(set.get()) : -1);
      if (!type.ok()) fail(name, "missing or unreadable dataset");
      if (H5Tget_class(type.get()) == H5T_FLOAT)
        (void)read_matrix(name);
      else
        (void)read_bytes(name);
      checked.push_back(name);
    }
  }
  return checked;
}

void Hdf5File::set_attribute(const std::string& object, const std::string& key,
                             std::int64_t value) {
  Plain space(H5Screate(H5S_SCALAR));
  Plain attr(H5Acreate_by_name(id_, object.c_str(), key.c_str(), H5T_STD_I64LE, space.get(),
                               H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.ok() || H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    fail(object, "cannot write attribute '" + key + "'");
}

void Hdf5File::set_attribute(const std::string& object, const std::string& key, double value) {
  Plain space(H5Screate(H5S_SCALAR));
  Plain attr(H5Acreate_by_name(id_, object.c_str(), key.c_str(), H5T_IEEE_F64LE, space.get(),
                               H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.ok() || H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0)
    fail(object, "cannot write attribute '" + key + "'");
}

void Hdf5File::set_attribute(const std::string& object, const std::string& key,
                             const std::string& value) {
  // Variable-length UTF-8: h5py reads it as str, h5dump prints it.
  Plain type(H5Tcopy(H5T_C_S1));
  if (!type.ok() || H5Tset_size(type.get(), H5T_VARIABLE) < 0 ||
      H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0)
    fail(object, "cannot make a string type");
  Plain space(H5Screate(H5S_SCALAR));
  Plain attr(H5Acreate_by_name(id_, object.c_str(), key.c_str(), type.get(), space.get(),
                               H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  const char* text = value.c_str();
  if (!attr.ok() || H5Awrite(attr.get(), type.get(), &text) < 0)
    fail(object, "cannot write attribute '" + key + "'");
}

std::int64_t Hdf5File::int_attribute(const std::string& object, const std::string& key) const {
  Plain attr(H5Aopen_by_name(id_, object.c_str(), key.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  std::int64_t value = 0;
  if (!attr.ok() || H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    fail(object, "missing or unreadable attribute '" + key + "'");
  return value;
}

double Hdf5File::double_attribute(const std::string& object, const std::string& key) const {
  Plain attr(H5Aopen_by_name(id_, object.c_str(), key.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  double value = 0.0;
  if (!attr.ok() || H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0)
    fail(object, "missing or unreadable attribute '" + key + "'");
  return value;
}

std::string Hdf5File::string_attribute(const std::string& object, const std::string& key) const {
  Plain attr(H5Aopen_by_name(id_, object.c_str(), key.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  Plain type(H5Tcopy(H5T_C_S1));
  if (!attr.ok() || !type.ok() || H5Tset_size(type.get(), H5T_VARIABLE) < 0 ||
      H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0)
    fail(object, "missing or unreadable attribute '" + key + "'");
  char* text = nullptr;
  if (H5Aread(attr.get(), type.get(), &text) < 0 || !text)
    fail(object, "unreadable string attribute '" + key + "'");
  std::string value(text);
  H5free_memory(text);
  return value;
}

std::vector<std::string> Hdf5File::members(const std::string& group) const {
  std::vector<std::string> names;
  const herr_t status = H5Literate_by_name(
      id_, group.c_str(), H5_INDEX_NAME, H5_ITER_INC, nullptr,
      [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
        static_cast<std::vector<std::string>*>(data)->emplace_back(name);
        return 0;
      },
      &names, H5P_DEFAULT);
  if (status < 0) fail(group, "cannot list the group");
  return names;
}

void sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0 || ::fsync(fd) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    throw CheckpointError(dir.string() + ": fsync of the directory failed: " + why);
  }
  ::close(fd);
}

}  // namespace kwm::checkpoint
