// Construction of parameter blocks: shape and finiteness checks, then owned copies.
#include "core/kalman/parameter_block.hpp"

#include <sstream>
#include <stdexcept>
#include <vector>

namespace kwm {
namespace {

std::string shape(Index rows, Index cols) {
  std::ostringstream s;
  s << rows << " x " << cols;
  return s.str();
}

template <typename T>
void require_shape(const char* what, BlockId id, const Tensor<T>& t, Index rows, Index cols) {
  if (t.rows() != rows || t.cols() != cols) {
    std::ostringstream message;
    message << "block " << id << ": " << what << " must be " << shape(rows, cols) << "; got "
            << shape(t.rows(), t.cols());
    throw std::invalid_argument(message.str());
  }
}

template <typename T>
Tensor<T> owned_copy(Backend<T>& backend, BlockId id, const char* what, const Tensor<T>& src) {
  if (src.empty()) {
    std::ostringstream message;
    message << "block " << id << ": " << what << " must not be empty";
    throw std::invalid_argument(message.str());
  }
  if (!backend.all_finite(src)) {
    std::ostringstream message;
    message << "block " << id << ": " << what << " contains NaN or Inf";
    throw std::invalid_argument(message.str());
  }
  Tensor<T> dst = backend.allocate(src.rows(), src.cols());
  backend.copy(src, dst);
  return dst;
}

}  // namespace

template <typename T>
ParameterBlock<T> make_dense_block(Backend<T>& backend, BlockId id, const Tensor<T>& mean,
                                   const Tensor<T>& second_moment, Form form) {
  const Index n = mean.rows();
  require_shape("mean", id, mean, n, 1);
  require_shape(form == Form::covariance ? "covariance" : "information", id, second_moment, n, n);
  ParameterBlock<T> block;
  block.id = id;
  block.kind = BlockKind::dense;
  block.form = form;
  block.mean = owned_copy(backend, id, "mean", mean);
  block.second_moment() = owned_copy(backend, id, "second moment", second_moment);
  backend.symmetrize(block.second_moment());
  return block;
}

template <typename T>
ParameterBlock<T> make_diagonal_block(Backend<T>& backend, BlockId id, const Tensor<T>& mean,
                                      const Tensor<T>& variances) {
  const Index n = mean.rows();
  require_shape("mean", id, mean, n, 1);
  require_shape("variances", id, variances, n, 1);
  ParameterBlock<T> block;
  block.id = id;
  block.kind = BlockKind::diagonal;
  block.form = Form::covariance;
  block.mean = owned_copy(backend, id, "mean", mean);
  block.covariance = owned_copy(backend, id, "variances", variances);
  std::vector<T> host(static_cast<std::size_t>(n));
  backend.download(block.covariance, host.data());
  for (const T v : host) {
    if (!(v > T(0))) {
      std::ostringstream message;
      message << "block " << id << ": every variance must be > 0; got " << v;
      throw std::invalid_argument(message.str());
    }
  }
  return block;
}

template <typename T>
ParameterBlock<T> make_shared_row_block(Backend<T>& backend, BlockId id, const Tensor<T>& weights,
                                        const Tensor<T>& second_moment, Form form) {
  const Index d_in = weights.cols();
  require_shape(form == Form::covariance ? "input covariance" : "input information", id,
                second_moment, d_in, d_in);
  ParameterBlock<T> block;
  block.id = id;
  block.kind = BlockKind::shared_row;
  block.form = form;
  block.mean = owned_copy(backend, id, "weights", weights);
  block.second_moment() = owned_copy(backend, id, "second moment", second_moment);
  backend.symmetrize(block.second_moment());
  if (form == Form::information) {
    block.information_vector = backend.allocate(weights.rows(), d_in);
    backend.gemm(Op::none, Op::none, T(1), block.mean, block.information, T(0),
                 block.information_vector);
  }
  return block;
}

std::string to_string(BlockKind kind) {
  switch (kind) {
    case BlockKind::dense:
      return "dense";
    case BlockKind::diagonal:
      return "diagonal";
    case BlockKind::shared_row:
      return "shared_row";
  }
  return "unknown";
}

std::string to_string(Form form) { return form == Form::covariance ? "covariance" : "information"; }

#define KWM_INSTANTIATE(T)                                                                 \
  template ParameterBlock<T> make_dense_block(Backend<T>&, BlockId, const Tensor<T>&,      \
                                              const Tensor<T>&, Form);                     \
  template ParameterBlock<T> make_diagonal_block(Backend<T>&, BlockId, const Tensor<T>&,   \
                                                 const Tensor<T>&);                        \
  template ParameterBlock<T> make_shared_row_block(Backend<T>&, BlockId, const Tensor<T>&, \
                                                   const Tensor<T>&, Form);
KWM_INSTANTIATE(float)
KWM_INSTANTIATE(double)
#undef KWM_INSTANTIATE

}  // namespace kwm
