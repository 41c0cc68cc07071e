// Tensor: a column-major matrix living in one backend's memory (host or GPU).
// Copies are cheap handles that share storage; a learner owns its tensors through them.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>

namespace kwm {

using Index = std::ptrdiff_t;

enum class MemorySpace { host, cuda };

template <typename T>
class Tensor {
 public:
  Tensor() = default;
  Tensor(Index rows, Index cols, std::shared_ptr<T> storage, MemorySpace space)
      : rows_(rows), cols_(cols), storage_(std::move(storage)), space_(space) {}

  Index rows() const { return rows_; }
  Index cols() const { return cols_; }
  Index size() const { return rows_ * cols_; }
  bool empty() const { return size() == 0; }
  bool is_vector() const { return cols_ == 1; }
  bool is_square() const { return rows_ == cols_; }
  MemorySpace space() const { return space_; }

  T* data() { return storage_.get(); }
  const T* data() const { return storage_.get(); }

 private:
  Index rows_ = 0;
  Index cols_ = 0;
  std::shared_ptr<T> storage_;
  MemorySpace space_ = MemorySpace::host;
};

// Thrown when a kernel receives operands whose shapes do not match its equation.
class ShapeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace kwm
