// Information-form statistics and the Cholesky-solve mean update for dense blocks.
#include "core/kalman/information_filter.hpp"

#include <sstream>
#include <stdexcept>

#include "core/kalman/jittered_cholesky.hpp"

namespace kwm {

template <typename T>
InformationFilter<T>::InformationFilter(Backend<T>& backend, const JitterConfig& jitter,
                                        AllReduceSum<T> reduce)
    : backend_(backend), jitter_(jitter), reduce_(std::move(reduce)) {
  jitter_.validate();
}

template <typename T>
InformationStatistics<T> InformationFilter<T>::zero_statistics(Index n) {
  InformationStatistics<T> stats;
  stats.precision = backend_.allocate(n, n);
  stats.vector = backend_.allocate(n, 1);
  return stats;
}

template <typename T>
bool InformationFilter<T>::accumulate(InformationStatistics<T>& stats, const Tensor<T>& h,
                                      const Tensor<T>& e, const Tensor<T>& r) {
  const Index m = h.rows();
  const Index n = h.cols();
  if (e.rows() != m || e.cols() != 1 || r.rows() != m || r.cols() != m ||
      stats.precision.rows() != n || stats.vector.rows() != n) {
    std::ostringstream message;
    message << "information accumulate: need H m x n, e m x 1, R m x m and statistics for n; got H "
            << h.rows() << " x " << h.cols() << ", e " << e.rows() << " x " << e.cols() << ", R "
            << r.rows() << " x " << r.cols() << ", statistics for " << stats.precision.rows();
    throw std::invalid_argument(message.str());
  }
  if (!backend_.all_finite(h) || !backend_.all_finite(e) || !backend_.all_finite(r)) {
    ++stats.rejected;
    ++counters_.nonfinite;
    return false;
  }
  Tensor<T> r_factor = backend_.allocate(m, m);
  backend_.copy(r, r_factor);
  if (!backend_.cholesky(r_factor)) {
    ++stats.rejected;
    ++counters_.cholesky_failures;
    return false;
  }
  Tensor<T> rinv_h = backend_.allocate(m, n);
  backend_.copy(h, rinv_h);
  backend_.cholesky_solve(r_factor, rinv_h);  // R^-1 H
  backend_.gemm(Op::transpose, Op::none, T(1), h, rinv_h, T(1), stats.precision);
  backend_.gemm(Op::transpose, Op::none, T(1), rinv_h, e, T(1), stats.vector);
  ++stats.observations;
  return true;
}

template <typename T>
UpdateStatus InformationFilter<T>::apply(ParameterBlock<T>& block, InformationStatistics<T>& stats,
                                         T lambda) {
  if (block.kind != BlockKind::dense || block.form != Form::information) {
    std::ostringstream message;
    message << "information apply: block " << block.id << " is " << to_string(block.kind) << " in "
            << to_string(block.form)
            << " form; it takes dense information-form blocks (shared-row: SharedRowRls)";
    throw std::invalid_argument(message.str());
  }
  const Index n = block.size();
  if (stats.precision.rows() != n || stats.vector.rows() != n) {
    std::ostringstream message;
    message << "information apply: block " << block.id << " has " << n
            << " parameters but the statistics have " << stats.precision.rows();
    throw std::invalid_argument(message.str());
  }
  if (!(lambda > T(0) && lambda <= T(1))) {
    std::ostringstream message;
    message << "information apply: lambda must be in (0, 1]; got " << lambda;
    throw std::invalid_argument(message.str());
  }
  all_reduce_sum(reduce_, stats.precision);
  all_reduce_sum(reduce_, stats.vector);

  FilterCounters delta;
  if (!backend_.all_finite(stats.precision) || !backend_.all_finite(stats.vector)) {
    delta.skips = delta.nonfinite = 1;
    block.counters += delta;
    counters_ += delta;
    return UpdateStatus::skipped_nonfinite;
  }
  // L_new = lambda L + precision, built beside L so that a failure leaves the block untouched.
  Tensor<T> l_new = backend_.allocate(n, n);
  backend_.copy(stats.precision, l_new);
  backend_.axpy(lambda, block.information, l_new);
  backend_.symmetrize(l_new);
  Tensor<T> factor = backend_.allocate(n, n);
  const CholeskyOutcome<T> factored = jittered_cholesky(backend_, l_new, factor, jitter_);
  delta.jitter_retries = factored.retries;
  if (!factored.ok) {
    delta.skips = delta.cholesky_failures = 1;
    block.counters += delta;
    counters_ += delta;
    return UpdateStatus::skipped_cholesky;
  }
  if (factored.jitter > T(0)) backend_.add_identity(factored.jitter, l_new);  // L that was solved
  Tensor<T> step = backend_.allocate(n, 1);
  backend_.copy(stats.vector, step);
  backend_.cholesky_solve(factor, step);  // L^-1 g
  backend_.axpy(T(1), step, block.mean);
  backend_.copy(l_new, block.information);
  delta.updates = 1;
  block.counters += delta;
  counters_ += delta;
  return UpdateStatus::applied;
}

template class InformationFilter<float>;
template class InformationFilter<double>;

}  // namespace kwm
