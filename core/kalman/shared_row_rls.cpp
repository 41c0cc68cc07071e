// Per-sample and batched shared-row (Kronecker) Kalman / RLS updates.
#include "core/kalman/shared_row_rls.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "core/kalman/jittered_cholesky.hpp"

namespace kwm {
namespace {

template <typename T>
void require_shared_row(const ParameterBlock<T>& block, Form form, const char* what) {
  if (block.kind != BlockKind::shared_row || block.form != form) {
    std::ostringstream message;
    message << what << ": block " << block.id << " is " << to_string(block.kind) << " in "
            << to_string(block.form) << " form; it needs a shared_row block in " << to_string(form)
            << " form";
    throw std::invalid_argument(message.str());
  }
}

template <typename T>
void require_noise_and_forgetting(const char* what, T r, T lambda) {
  if (!(r > T(0)) || !std::isfinite(r) || !(lambda > T(0) && lambda <= T(1))) {
    std::ostringstream message;
    message << what << ": needs r finite and > 0 and lambda in (0, 1]; got r = " << r
            << ", lambda = " << lambda;
    throw std::invalid_argument(message.str());
  }
}

}  // namespace

template <typename T>
SharedRowRls<T>::SharedRowRls(Backend<T>& backend, const JitterConfig& jitter,
                              AllReduceSum<T> reduce)
    : backend_(backend), jitter_(jitter), reduce_(std::move(reduce)) {
  jitter_.validate();
}

template <typename T>
Tensor<T>& SharedRowRls<T>::ensure(Tensor<T>& t, Index rows, Index cols) {
  if (t.rows() != rows || t.cols() != cols) t = backend_.allocate(rows, cols);
  return t;
}

template <typename T>
UpdateStatus SharedRowRls<T>::skip(ParameterBlock<T>& block, UpdateStatus status,
                                   int jitter_retries) {
  FilterCounters delta;
  delta.skips = 1;
  delta.jitter_retries = jitter_retries;
  if (status == UpdateStatus::skipped_nonfinite) delta.nonfinite = 1;
  if (status == UpdateStatus::skipped_cholesky) delta.cholesky_failures = 1;
  block.counters += delta;
  counters_ += delta;
  return status;
}

template <typename T>
UpdateStatus SharedRowRls<T>::update(ParameterBlock<T>& block, const Tensor<T>& a,
                                     const Tensor<T>& target, T r, T lambda) {
  require_shared_row(block, Form::covariance, "shared-row update");
  require_noise_and_forgetting("shared-row update", r, lambda);
  const Index d_out = block.mean.rows();
  const Index d_in = block.mean.cols();
  if (a.rows() != d_in || a.cols() != 1 || target.rows() != d_out || target.cols() != 1) {
    std::ostringstream message;
    message << "shared-row update: block " << block.id << " needs a " << d_in << " x 1 and z* "
            << d_out << " x 1; got a " << a.rows() << " x " << a.cols() << ", z* " << target.rows()
            << " x " << target.cols();
    throw std::invalid_argument(message.str());
  }
  if (!backend_.all_finite(a) || !backend_.all_finite(target)) {
    return skip(block, UpdateStatus::skipped_nonfinite);
  }
  Tensor<T>& u = ensure(u_, d_in, 1);
  Tensor<T>& k = ensure(gain_, d_in, 1);
  Tensor<T>& residual = ensure(residual_, d_out, 1);
  backend_.gemm(Op::none, Op::none, T(1), block.covariance, a, T(0), u);  // u = P a
  const T denominator = r * lambda + backend_.dot(a, u);
  if (!std::isfinite(denominator)) return skip(block, UpdateStatus::skipped_nonfinite);
  if (!(denominator > T(0))) return skip(block, UpdateStatus::skipped_cholesky);

  backend_.copy(u, k);
  backend_.scale(T(1) / denominator, k);
  backend_.copy(target, residual);
  backend_.gemm(Op::none, Op::none, T(-1), block.mean, a, T(1), residual);  // z* - W a
  backend_.gemm(Op::none, Op::transpose, T(1), residual, k, T(1), block.mean);
  backend_.riccati_downdate(block.covariance, k, u);
  // riccati_downdate leaves P exactly symmetric and a scalar scale keeps it so: no symmetrize.
  if (lambda != T(1)) backend_.scale(T(1) / lambda, block.covariance);
  ++block.counters.updates;
  ++counters_.updates;
  return UpdateStatus::applied;
}

template <typename T>
SharedRowStatistics<T> SharedRowRls<T>::zero_statistics(Index d_out, Index d_in) {
  SharedRowStatistics<T> stats;
  stats.input_precision = backend_.allocate(d_in, d_in);
  stats.cross = backend_.allocate(d_out, d_in);
  return stats;
}

template <typename T>
bool SharedRowRls<T>::accumulate(SharedRowStatistics<T>& stats, const Tensor<T>& inputs,
                                 const Tensor<T>& targets, T r) {
  require_noise_and_forgetting("shared-row accumulate", r, T(1));
  const Index d_in = stats.input_precision.rows();
  const Index d_out = stats.cross.rows();
  if (inputs.rows() != d_in || targets.rows() != d_out || inputs.cols() != targets.cols()) {
    std::ostringstream message;
    message << "shared-row accumulate: needs inputs " << d_in << " x N and targets " << d_out
            << " x N; got " << inputs.rows() << " x " << inputs.cols() << " and " << targets.rows()
            << " x " << targets.cols();
    throw std::invalid_argument(message.str());
  }
  if (!backend_.all_finite(inputs) || !backend_.all_finite(targets)) {
    ++stats.rejected;
    ++counters_.nonfinite;
    return false;
  }
  const T inverse_r = T(1) / r;
  backend_.syrk(Op::none, inverse_r, inputs, T(1), stats.input_precision);
  backend_.gemm(Op::none, Op::transpose, inverse_r, targets, inputs, T(1), stats.cross);
  stats.samples += inputs.cols();
  return true;
}

template <typename T>
UpdateStatus SharedRowRls<T>::apply(ParameterBlock<T>& block, SharedRowStatistics<T>& stats,
                                    T lambda) {
  require_shared_row(block, Form::information, "shared-row apply");
  require_noise_and_forgetting("shared-row apply", T(1), lambda);
  const Index d_in = block.information.rows();
  if (stats.input_precision.rows() != d_in || stats.cross.rows() != block.mean.rows() ||
      stats.cross.cols() != d_in) {
    std::ostringstream message;
    message << "shared-row apply: block " << block.id << " is " << block.mean.rows() << " x "
            << d_in << " but the statistics are " << stats.cross.rows() << " x "
            << stats.cross.cols();
    throw std::invalid_argument(message.str());
  }
  all_reduce_sum(reduce_, stats.input_precision);
  all_reduce_sum(reduce_, stats.cross);
  if (!backend_.all_finite(stats.input_precision) || !backend_.all_finite(stats.cross)) {
    return skip(block, UpdateStatus::skipped_nonfinite);
  }
  // New L and B beside the old ones so that a failed factorisation leaves the block untouched.
  Tensor<T> l_new = backend_.allocate(d_in, d_in);
  backend_.copy(stats.input_precision, l_new);
  backend_.axpy(lambda, block.information, l_new);
  backend_.symmetrize(l_new);
  Tensor<T> factor = backend_.allocate(d_in, d_in);
  const CholeskyOutcome<T> factored = jittered_cholesky(backend_, l_new, factor, jitter_);
  if (!factored.ok) return skip(block, UpdateStatus::skipped_cholesky, factored.retries);
  if (factored.jitter > T(0)) backend_.add_identity(factored.jitter, l_new);  // L that was solved
  backend_.scale(lambda, block.information_vector);
  backend_.axpy(T(1), stats.cross, block.information_vector);  // B <- lambda B + cross
  backend_.copy(l_new, block.information);
  backend_.copy(block.information_vector, block.mean);
  backend_.cholesky_solve_right(factor, block.mean);  // W = B L^-1
  block.counters.jitter_retries += factored.retries;
  counters_.jitter_retries += factored.retries;
  ++block.counters.updates;
  ++counters_.updates;
  return UpdateStatus::applied;
}

template class SharedRowRls<float>;
template class SharedRowRls<double>;

}  // namespace kwm
