// Eigenvalue floor and ceiling for a block's covariance (ALGORITHMS.md section 7), on demand or
// every k updates. Bounds are in covariance terms for every form.
#pragma once

#include "core/backend/backend.hpp"
#include "core/kalman/config.hpp"
#include "core/kalman/parameter_block.hpp"

namespace kwm {

// Clamps the eigenvalues of P into [floor, ceiling]: dense and shared-row through
// Backend::clamp_eigenvalues, diagonal blocks entry by entry, information form on L with the
// bounds [1/ceiling, 1/floor]. Returns how many eigenvalues moved (also added to
// block.counters.eigen_clamps).
template <typename T>
Index clamp_covariance_eigenvalues(Backend<T>& backend, ParameterBlock<T>& block, T floor,
                                   T ceiling);

// Applies the clamp when config.clamp_every > 0 and block.counters.updates is a multiple of it.
template <typename T>
Index clamp_if_due(Backend<T>& backend, ParameterBlock<T>& block, const SafeguardConfig& config);

}  // namespace kwm
