// Escalating-jitter Cholesky (ALGORITHMS.md section 7).
#include "core/kalman/jittered_cholesky.hpp"

#include <cmath>

namespace kwm {

template <typename T>
CholeskyOutcome<T> jittered_cholesky(Backend<T>& backend, const Tensor<T>& a, Tensor<T>& factor,
                                     const JitterConfig& config) {
  CholeskyOutcome<T> outcome;
  // A factor with NaN/Inf (overflow, or NaN that slipped past the pivot test) counts as failed.
  auto factor_ok = [&] { return backend.cholesky(factor) && backend.all_finite(factor); };
  backend.copy(a, factor);
  if (factor_ok()) {
    outcome.ok = true;
    return outcome;
  }
  const T trace = backend.trace(a);
  if (!std::isfinite(trace)) return outcome;
  const T mean_diagonal = trace / static_cast<T>(a.rows());
  const T scale = mean_diagonal > T(0) ? mean_diagonal : T(1);
  T jitter = static_cast<T>(config.initial_relative) * scale;
  for (int k = 0; k < config.max_retries; ++k) {
    outcome.retries = k + 1;
    outcome.jitter = jitter;
    backend.copy(a, factor);
    backend.add_identity(jitter, factor);
    if (factor_ok()) {
      outcome.ok = true;
      return outcome;
    }
    jitter *= static_cast<T>(config.growth);
  }
  return outcome;
}

template CholeskyOutcome<float> jittered_cholesky(Backend<float>&, const Tensor<float>&,
                                                  Tensor<float>&, const JitterConfig&);
template CholeskyOutcome<double> jittered_cholesky(Backend<double>&, const Tensor<double>&,
                                                   Tensor<double>&, const JitterConfig&);

}  // namespace kwm
