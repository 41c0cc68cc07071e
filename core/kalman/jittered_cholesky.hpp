// Cholesky factorisation with escalating diagonal jitter: the one place the filter factors an
// SPD matrix (innovation covariance S, information L, shared-row L).
#pragma once

#include "core/backend/backend.hpp"
#include "core/kalman/config.hpp"

namespace kwm {

template <typename T>
struct CholeskyOutcome {
  bool ok = false;  // factor holds L with A + jitter I = L L^T
  int retries = 0;  // attempts that needed jitter (0 when A factored as given)
  T jitter = T(0);  // the jitter in the successful (or last failed) attempt
};

// factor <- chol(a + j I): first j = 0, then j = initial_relative * scale * growth^k for
// k = 0..max_retries-1, scale = trace(a)/n when that is finite and > 0, else 1.
// `a` is left unchanged; `factor` must have a's shape. A non-finite `a` fails at once.
template <typename T>
CholeskyOutcome<T> jittered_cholesky(Backend<T>& backend, const Tensor<T>& a, Tensor<T>& factor,
                                     const JitterConfig& config);

}  // namespace kwm
