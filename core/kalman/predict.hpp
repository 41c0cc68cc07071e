// Predict step of the parameter random walk (ALGORITHMS.md section 1): process noise or
// forgetting, then the trace cap against wind-up. Works on every block kind and form.
#pragma once

#include "core/backend/backend.hpp"
#include "core/kalman/config.hpp"
#include "core/kalman/parameter_block.hpp"

namespace kwm {

// P <- P + q I (dense, shared-row input covariance), p_i <- p_i + q (diagonal).
// Information form: L <- (L^-1 + q I)^-1 = L - L (L + I/q)^-1 L by one Cholesky solve
// (shared-row: then B <- W L). q = 0 is a no-op; q < 0 throws std::invalid_argument.
template <typename T>
void add_process_noise(Backend<T>& backend, ParameterBlock<T>& block, T q,
                       const JitterConfig& jitter = {});

// P <- P + diag(q), q a vector with one entry per row of P (n x 1, or d_in x 1).
// Information form as above with Q^-1 = diag(1/q_i); there every q_i must be > 0.
template <typename T>
void add_process_noise(Backend<T>& backend, ParameterBlock<T>& block, const Tensor<T>& q,
                       const JitterConfig& jitter = {});

// P <- P / lambda, lambda in (0, 1]; information form L <- lambda L (shared-row: B <- lambda B).
template <typename T>
void apply_forgetting(Backend<T>& backend, ParameterBlock<T>& block, T lambda);

// trace(P) of the block's stored covariance (information form: sum of 1 / eig(L)).
template <typename T>
T covariance_trace(Backend<T>& backend, const ParameterBlock<T>& block);

// When trace(P) > cap: P <- P cap / trace(P) (information form: L and B scaled by the inverse).
// For shared-row blocks the cap applies to the input covariance P. Returns true when it scaled,
// and counts it in block.counters.trace_caps.
template <typename T>
bool cap_trace(Backend<T>& backend, ParameterBlock<T>& block, T cap);

// The configured dynamics (none, process noise or forgetting), then the trace cap if set.
template <typename T>
void predict(Backend<T>& backend, ParameterBlock<T>& block, const PredictConfig& config,
             const JitterConfig& jitter = {});

}  // namespace kwm
