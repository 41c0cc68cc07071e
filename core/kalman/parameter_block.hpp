// A block of parameters as filter state: its mean and its covariance (or information) in one of
// three shapes (dense, diagonal, shared-row), held as Tensor handles in one backend's memory.
#pragma once

#include <cstdint>
#include <string>

#include "core/backend/backend.hpp"
#include "core/kalman/filter_counters.hpp"

namespace kwm {

// Global block id: names the block independently of how many ranks the run uses.
using BlockId = std::int64_t;

enum class BlockKind {
  dense,       // mean n x 1, covariance n x n
  diagonal,    // mean n x 1, variances n x 1
  shared_row,  // mean W (d_out x d_in), one input covariance P (d_in x d_in): cov(vec W) = I (x) P
};

// Covariance form stores P; information form stores L = P^-1 (and, for shared-row blocks, the
// information matrix B = W L of ALGORITHMS.md section 4).
enum class Form { covariance, information };

template <typename T>
struct ParameterBlock {
  BlockId id = 0;
  BlockKind kind = BlockKind::dense;
  Form form = Form::covariance;
  Tensor<T> mean;         // m_b (n x 1), or W (d_out x d_in) for shared-row
  Tensor<T> covariance;   // P: n x n, n x 1 (diagonal) or d_in x d_in; empty in information form
  Tensor<T> information;  // L = P^-1, same shape as P; empty in covariance form
  Tensor<T> information_vector;  // shared-row information form only: B = W L (d_out x d_in)
  FilterCounters counters;

  // Number of parameters in the block (n, or d_out * d_in).
  Index size() const { return mean.size(); }
  // The stored second-moment matrix: P in covariance form, L in information form.
  Tensor<T>& second_moment() { return form == Form::covariance ? covariance : information; }
  const Tensor<T>& second_moment() const {
    return form == Form::covariance ? covariance : information;
  }
};

// Dense block from a mean (n x 1) and P (covariance form) or L (information form), n x n.
// The tensors are copied into fresh storage. Throws std::invalid_argument on bad shapes or
// non-finite values.
template <typename T>
ParameterBlock<T> make_dense_block(Backend<T>& backend, BlockId id, const Tensor<T>& mean,
                                   const Tensor<T>& second_moment, Form form = Form::covariance);

// Diagonal block (covariance form only) from a mean (n x 1) and variances (n x 1, all > 0).
template <typename T>
ParameterBlock<T> make_diagonal_block(Backend<T>& backend, BlockId id, const Tensor<T>& mean,
                                      const Tensor<T>& variances);

// Shared-row block from W (d_out x d_in) and P or L (d_in x d_in). In information form B = W L.
template <typename T>
ParameterBlock<T> make_shared_row_block(Backend<T>& backend, BlockId id, const Tensor<T>& weights,
                                        const Tensor<T>& second_moment,
                                        Form form = Form::covariance);

std::string to_string(BlockKind kind);
std::string to_string(Form form);

}  // namespace kwm
