// Checked HDF5 wrappers: one place where the C API's status codes become CheckpointErrors.
#include "distributed/checkpoint/hdf5_file.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <vector>

#include "distributed/checkpoint/metadata_probe.hpp"
#include "distributed/checkpoint/xxhash64.hpp"

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

// Rows per slab of about 4 MiB (at least one row).
Eigen::Index slab_rows(Eigen::Index cols) {
  return std::max<Eigen::Index>(1, (Eigen::Index{1} << 19) / std::max<Eigen::Index>(cols, 1));
}

// Rows [first, first + count) of m into `out`, row-major; tiles of 32 columns keep both sides in
// cache (a plain row-by-row copy of a column-major matrix misses on every element).
constexpr Eigen::Index kTile = 32;
void copy_rows_out(const Eigen::MatrixXd& m, Eigen::Index first, Eigen::Index count, double* out) {
  const Eigen::Index cols = m.cols();
  for (Eigen::Index j0 = 0; j0 < cols; j0 += kTile) {
    const Eigen::Index j1 = std::min(cols, j0 + kTile);
    for (Eigen::Index i = 0; i < count; ++i)
      for (Eigen::Index j = j0; j < j1; ++j) out[i * cols + j] = m(first + i, j);
  }
}

void copy_rows_in(const double* in, Eigen::Index first, Eigen::Index count, Eigen::MatrixXd& m) {
  const Eigen::Index cols = m.cols();
  for (Eigen::Index j0 = 0; j0 < cols; j0 += kTile) {
    const Eigen::Index j1 = std::min(cols, j0 + kTile);
    for (Eigen::Index i = 0; i < count; ++i)
      for (Eigen::Index j = j0; j < j1; ++j) m(first + i, j) = in[i * cols + j];
  }
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

// Every HDF5 file starts with this signature (the writer never adds a user block).
constexpr char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};

}  // namespace

Hdf5File::Hdf5File(std::filesystem::path path, std::int64_t id) : path_(std::move(path)), id_(id) {}

Hdf5File::Hdf5File(Hdf5File&& other) noexcept
    : path_(std::move(other.path_)), id_(other.id_), file_bytes_(other.file_bytes_) {
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

// The file's size, after our own checks: it exists and starts with HDF5's signature (HDF5 1.10
// is not hardened against arbitrary bytes: docs/fuzzing.md).
static std::uintmax_t checked_size(const std::filesystem::path& path) {
  std::error_code error;
  const std::uintmax_t bytes = std::filesystem::file_size(path, error);
  if (error) throw CheckpointError(path.string() + ": missing file");
  char head[sizeof kSignature] = {};
  std::ifstream in(path, std::ios::binary);
  if (!in.read(head, sizeof head) || std::memcmp(head, kSignature, sizeof head) != 0)
    throw CheckpointError(path.string() + ": not an HDF5 file (no HDF5 signature at byte 0)");
  return bytes;
}

Hdf5File Hdf5File::open(const std::filesystem::path& path) {
  // The cheap checks need no process; H5Fopen already parses metadata, so it waits for the probe.
  (void)checked_size(path);
  probe_metadata({path});
  return open_unprobed(path);
}

Hdf5File Hdf5File::open_unprobed(const std::filesystem::path& path) {
  quiet_hdf5();
  const std::uintmax_t bytes = checked_size(path);
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0)
    throw CheckpointError(
        path.string() + ": not a readable HDF5 file (truncated or corrupt: " + hdf5_reason() + ")");
  Hdf5File file(path, id);
  file.file_bytes_ = bytes;
  return file;
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

// Contiguous layout (no chunks, no filters: HDF5 writes straight from the buffer), written in
// slabs of whole rows that `slab(first_row, rows)` lays out row-major, hashed as they go; then
// the XXH64 of all the stored bytes as the dataset's attribute.
void Hdf5File::write_dataset(const std::string& name, std::int64_t type, std::int64_t memory_type,
                             int rank, const std::uint64_t* dims, std::uint64_t slab_rows,
                             const SlabSource& slab) {
  ensure_parent_groups(name);
  const hsize_t extent[2] = {dims[0], rank == 2 ? dims[1] : 1};
  Plain space(H5Screate_simple(rank, extent, nullptr));
  if (!space.ok()) fail(name, "cannot create a dataspace");
  Plain set(
      H5Dcreate2(id_, name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!set.ok()) fail(name, "cannot create the dataset");
  const std::size_t element = H5Tget_size(type);
  Xxh64 sum;
  for (hsize_t first = 0; first < extent[0] && extent[1] > 0; first += slab_rows) {
    const hsize_t start[2] = {first, 0};
    const hsize_t count[2] = {std::min<hsize_t>(slab_rows, extent[0] - first), extent[1]};
    Plain memory(H5Screate_simple(rank, count, nullptr));
    if (!memory.ok() ||
        H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) < 0)
      fail(name, "cannot select rows to write");
    const void* bytes = slab(first, count[0]);
    if (H5Dwrite(set.get(), memory_type, memory.get(), space.get(), H5P_DEFAULT, bytes) < 0)
      fail(name, "write failed");
    sum.update(bytes, count[0] * count[1] * element);
  }
  const std::uint64_t digest = sum.digest();
  Plain scalar(H5Screate(H5S_SCALAR));
  Plain attr(H5Acreate2(set.get(), kChecksumAttribute, H5T_STD_U64LE, scalar.get(), H5P_DEFAULT,
                        H5P_DEFAULT));
  if (!attr.ok() || H5Awrite(attr.get(), H5T_NATIVE_UINT64, &digest) < 0)
    fail(name, std::string("cannot write the checksum attribute '") + kChecksumAttribute + "'");
}

void Hdf5File::write_matrix(const std::string& name, const Eigen::MatrixXd& value) {
  const std::uint64_t dims[2] = {static_cast<std::uint64_t>(value.rows()),
                                 static_cast<std::uint64_t>(value.cols())};
  // A vector is its own row-major layout: one slab, no copy.
  if (value.cols() == 1 || value.rows() == 1) {
    write_dataset(name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dims, dims[0],
                  [&](std::uint64_t, std::uint64_t) { return value.data(); });
    return;
  }
  // Otherwise row-major slabs of about 4 MiB through a cache-sized buffer (no full copy).
  const Eigen::Index rows = slab_rows(value.cols());
  std::vector<double> buffer(static_cast<std::size_t>(rows * value.cols()));
  write_dataset(name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dims, static_cast<std::uint64_t>(rows),
                [&](std::uint64_t first, std::uint64_t count) {
                  copy_rows_out(value, static_cast<Eigen::Index>(first),
                                static_cast<Eigen::Index>(count), buffer.data());
                  return static_cast<const void*>(buffer.data());
                });
}

void Hdf5File::write_bytes(const std::string& name, const std::string& bytes) {
  const std::uint64_t dims[1] = {static_cast<std::uint64_t>(bytes.size())};
  write_dataset(name, H5T_STD_U8LE, H5T_NATIVE_UCHAR, 1, dims, dims[0],
                [&](std::uint64_t, std::uint64_t) { return bytes.data(); });
}

void Hdf5File::verify_checksum(const std::string& name, std::int64_t set,
                               std::uint64_t computed) const {
  const htri_t has = H5Aexists(set, kChecksumAttribute);
  if (has < 0) fail(name, "cannot look up the checksum attribute");
  if (has == 0) {
    // Format version 1: Fletcher32 on every chunk, already checked by H5Dread.
    Plain dcpl(H5Dget_create_plist(set));
    unsigned flags = 0;
    std::size_t count = 0;
    if (!dcpl.ok() || H5Pget_filter_by_id2(dcpl.get(), H5Z_FILTER_FLETCHER32, &flags, &count,
                                           nullptr, 0, nullptr, nullptr) < 0) {
      H5Eclear2(H5E_DEFAULT);
      fail(name, std::string("no checksum (neither an '") + kChecksumAttribute +
                     "' attribute nor the Fletcher32 filter)");
    }
    return;
  }
  Plain attr(H5Aopen(set, kChecksumAttribute, H5P_DEFAULT));
  Plain space(attr.ok() ? H5Aget_space(attr.get()) : -1);
  std::uint64_t stored = 0;
  if (!space.ok() || H5Sget_simple_extent_npoints(space.get()) != 1 ||
      H5Aread(attr.get(), H5T_NATIVE_UINT64, &stored) < 0)
    fail(name, std::string("unreadable checksum attribute '") + kChecksumAttribute + "'");
  if (computed != stored) {
    char text[96];
    std::snprintf(text, sizeof text, "checksum mismatch (xxh64 stored %016llx, data %016llx)",
                  static_cast<unsigned long long>(stored),
                  static_cast<unsigned long long>(computed));
    fail(name, text);
  }
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
  if (rank == 1) dims[1] = 1;
  // No dataset of ours is larger than its file: a corrupt header must not make us allocate.
  const hsize_t limit = std::numeric_limits<std::int64_t>::max() / 8;
  if (dims[0] > limit || dims[1] > limit || (dims[1] > 0 && dims[0] > limit / dims[1]) ||
      dims[0] * dims[1] > file_bytes_)
    fail(name, "dataspace " + std::to_string(dims[0]) + " x " + std::to_string(dims[1]) +
                   " is larger than the file");
  return {static_cast<std::int64_t>(dims[0]), static_cast<std::int64_t>(dims[1])};
}

Eigen::MatrixXd Hdf5File::read_matrix(const std::string& name) const {
  const auto [rows, cols] = shape(name);
  Plain set(H5Dopen2(id_, name.c_str(), H5P_DEFAULT));
  if (!set.ok()) fail(name, "missing or unreadable dataset");
  Plain type(H5Dget_type(set.get()));
  if (!type.ok() || H5Tget_class(type.get()) != H5T_FLOAT || H5Tget_size(type.get()) != 8)
    fail(name, "expected a float64 dataset");
  Plain space(H5Dget_space(set.get()));
  if (!space.ok()) fail(name, "unexpected dataspace");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  Eigen::MatrixXd value(rows, cols);
  Xxh64 sum;
  // Row-major slabs of about 4 MiB, hashed as read, scattered into the column-major result (a
  // vector needs no scatter: it is read in place).
  const bool vector = rows == 1 || cols == 1;
  const Eigen::Index slab = vector ? std::max<Eigen::Index>(rows, 1) : slab_rows(cols);
  std::vector<double> buffer(vector ? 0 : static_cast<std::size_t>(slab * cols));
  for (Eigen::Index first = 0; first < rows && cols > 0; first += slab) {
    const Eigen::Index count_rows = std::min(slab, rows - first);
    const hsize_t start[2] = {static_cast<hsize_t>(first), 0};
    const hsize_t count[2] = {static_cast<hsize_t>(count_rows), static_cast<hsize_t>(cols)};
    Plain memory(H5Screate_simple(rank, count, nullptr));
    if (!memory.ok() ||
        H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) < 0)
      fail(name, "cannot select rows to read");
    double* out = vector ? value.data() : buffer.data();
    if (H5Dread(set.get(), H5T_NATIVE_DOUBLE, memory.get(), space.get(), H5P_DEFAULT, out) < 0)
      fail(name, "read failed: checksum mismatch or corrupt data");
    sum.update(out, static_cast<std::size_t>(count_rows * cols) * sizeof(double));
    if (!vector) copy_rows_in(buffer.data(), first, count_rows, value);
  }
  verify_checksum(name, set.get(), sum.digest());
  return value;
}

std::string Hdf5File::read_bytes(const std::string& name) const {
  const auto [size, cols] = shape(name);
  if (cols != 1) fail(name, "expected a one-dimensional byte dataset");
  Plain set(H5Dopen2(id_, name.c_str(), H5P_DEFAULT));
  if (!set.ok()) fail(name, "missing or unreadable dataset");
  Plain type(H5Dget_type(set.get()));
  if (!type.ok() || H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_size(type.get()) != 1)
    fail(name, "expected a byte (uint8) dataset");
  std::string bytes(static_cast<std::size_t>(size), '\0');
  if (size > 0 &&
      H5Dread(set.get(), H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()) < 0)
    fail(name, "read failed: checksum mismatch or corrupt data");
  verify_checksum(name, set.get(), xxh64(bytes.data(), bytes.size()));
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

std::int64_t Hdf5File::open_scalar_attribute(const std::string& object,
                                             const std::string& key) const {
  const hid_t attr = H5Aopen_by_name(id_, object.c_str(), key.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  if (attr < 0) fail(object, "missing or unreadable attribute '" + key + "'");
  // One value, or H5Aread would write past the single value the caller holds.
  Plain space(H5Aget_space(attr));
  if (!space.ok() || H5Sget_simple_extent_npoints(space.get()) != 1) {
    H5Aclose(attr);
    fail(object, "attribute '" + key + "' does not hold exactly one value");
  }
  return attr;
}

std::int64_t Hdf5File::int_attribute(const std::string& object, const std::string& key) const {
  Plain attr(open_scalar_attribute(object, key));
  std::int64_t value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    fail(object, "missing or unreadable attribute '" + key + "'");
  return value;
}

double Hdf5File::double_attribute(const std::string& object, const std::string& key) const {
  Plain attr(open_scalar_attribute(object, key));
  double value = 0.0;
  if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0)
    fail(object, "missing or unreadable attribute '" + key + "'");
  return value;
}

std::string Hdf5File::string_attribute(const std::string& object, const std::string& key) const {
  Plain attr(open_scalar_attribute(object, key));
  Plain type(H5Tcopy(H5T_C_S1));
  if (!type.ok() || H5Tset_size(type.get(), H5T_VARIABLE) < 0 ||
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

namespace {

// The metadata walk (Hdf5File::walk_metadata): one object at a time, each attribute's value read
// into a scratch value of its own class, nothing of a dataset's elements read.
class MetadataWalk {
 public:
  MetadataWalk(const Hdf5File& file, hid_t id) : file_(file), id_(id) {}

  void object(const std::string& name, int depth) {
    // kwm writes at most four levels (/metrics/running/<name>); far deeper is damage.
    if (depth > 32) fail(name, "groups nested deeper than 32 levels");
    H5O_info_t info;
    if (H5Oget_info_by_name(id_, name.c_str(), &info, H5P_DEFAULT) < 0)
      fail(name, "cannot inspect the object");
    // A hard link back to an object already walked would make the readers' recursion endless.
    if (!seen_.insert(info.addr).second) fail(name, "an object reachable twice (a link cycle)");
    ++objects_;
    Plain handle(H5Oopen(id_, name.c_str(), H5P_DEFAULT));
    if (!handle.ok()) fail(name, "cannot open the object");
    attributes(name, handle.get());
    if (info.type == H5O_TYPE_GROUP) {
      for (const std::string& member : file_.members(name)) {
        const std::string child = (name == "/" ? "" : name) + "/" + member;
        H5L_info_t link;
        if (H5Lget_info(id_, child.c_str(), &link, H5P_DEFAULT) < 0)
          fail(child, "cannot read the link");
        // External links would open other files; kwm never writes one (nor soft links).
        if (link.type != H5L_TYPE_HARD && link.type != H5L_TYPE_SOFT)
          fail(child, "an external or user-defined link (kwm writes none)");
        object(child, depth + 1);
      }
    } else if (info.type == H5O_TYPE_DATASET) {
      dataset(handle.get());
    }
  }

  std::int64_t objects() const { return objects_; }

 private:
  [[noreturn]] void fail(const std::string& object, const std::string& what) const {
    throw CheckpointError(file_.path().string() + ": " + object + ": " + what);
  }

  void attributes(const std::string& name, hid_t handle) {
    std::string error;
    struct Context {
      MetadataWalk* walk;
      const std::string* name;
      std::string* error;
    } context{this, &name, &error};
    const herr_t status = H5Aiterate2(
        handle, H5_INDEX_NAME, H5_ITER_INC, nullptr,
        [](hid_t loc, const char* key, const H5A_info_t*, void* data) -> herr_t {
          auto* c = static_cast<Context*>(data);
          try {
            c->walk->attribute(*c->name, loc, key);
          } catch (const CheckpointError& e) {
            *c->error = e.what();
            return -1;
          }
          return 0;
        },
        &context);
    if (!error.empty()) throw CheckpointError(error);
    if (status < 0) fail(name, "cannot list the attributes");
  }

  // Reads the value as the readers would: strings as variable-length UTF-8 (the global heap),
  // numbers as int64 or double; values of other classes are only typed.
  void attribute(const std::string& name, hid_t loc, const char* key) {
    const std::string where = name + " attribute '" + key + "'";
    Plain attr(H5Aopen(loc, key, H5P_DEFAULT));
    Plain type(attr.ok() ? H5Aget_type(attr.get()) : -1);
    Plain space(attr.ok() ? H5Aget_space(attr.get()) : -1);
    if (!type.ok() || !space.ok()) fail(where, "unreadable");
    const H5T_class_t cls = H5Tget_class(type.get());
    if (H5Sget_simple_extent_npoints(space.get()) != 1) return;  // the readers refuse these
    if (cls == H5T_STRING) {
      Plain memory(H5Tcopy(H5T_C_S1));
      char* text = nullptr;
      if (!memory.ok() || H5Tset_size(memory.get(), H5T_VARIABLE) < 0 ||
          H5Tset_cset(memory.get(), H5T_CSET_UTF8) < 0 ||
          H5Aread(attr.get(), memory.get(), &text) < 0) {
        H5Eclear2(H5E_DEFAULT);
        return;  // a clean HDF5 error: the reader reports it in turn
      }
      H5free_memory(text);
    } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
      double value = 0.0;
      std::int64_t whole = 0;
      if ((cls == H5T_INTEGER ? H5Aread(attr.get(), H5T_NATIVE_INT64, &whole)
                              : H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value)) < 0)
        H5Eclear2(H5E_DEFAULT);
    }
  }

  // Type, dataspace, creation properties (filters) and, for a chunked (version-1) dataset, the
  // chunk index that H5Dread would walk.
  static void dataset(hid_t set) {
    Plain type(H5Dget_type(set));
    Plain space(H5Dget_space(set));
    Plain dcpl(H5Dget_create_plist(set));
    if (!type.ok() || !space.ok() || !dcpl.ok()) {
      H5Eclear2(H5E_DEFAULT);
      return;
    }
    (void)H5Tget_class(type.get());
    (void)H5Tget_size(type.get());
    hsize_t dims[H5S_MAX_RANK];
    (void)H5Sget_simple_extent_dims(space.get(), dims, nullptr);
    (void)H5Pget_nfilters(dcpl.get());
    if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
      hsize_t chunks = 0;
      (void)H5Dget_num_chunks(set, H5S_ALL, &chunks);
    }
    H5Eclear2(H5E_DEFAULT);
  }

  const Hdf5File& file_;
  hid_t id_;
  std::set<haddr_t> seen_;
  std::int64_t objects_ = 0;
};

}  // namespace

std::int64_t Hdf5File::walk_metadata() const {
  MetadataWalk walk(*this, id_);
  walk.object("/", 0);
  return walk.objects();
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
