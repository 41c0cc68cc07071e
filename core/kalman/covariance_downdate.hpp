// The measurement downdate of a covariance block given its gain K = U S^-1 and U = P H^T:
// plain P - K U^T (symmetric form) or the Joseph-type form valid for any gain. One code path
// serves dense and diagonal blocks; the result is symmetrised.
#pragma once

#include "core/backend/backend.hpp"
#include "core/kalman/parameter_block.hpp"

namespace kwm {

// Plain:  P <- P - (K U^T + U K^T) / 2         (= P - K U^T for the optimal gain)
// Joseph: P <- P - K U^T - U K^T + K S K^T    ((I - K H) P (I - K H)^T + K R K^T written with
//                                               U = P H^T and S = H P H^T + R; any gain K)
// Dense blocks update the n x n matrix, diagonal blocks only its diagonal. `s` (m x m) is
// used by the Joseph form only; `workspace` must be n x m when joseph is set.
template <typename T>
void downdate_covariance(Backend<T>& backend, ParameterBlock<T>& block, const Tensor<T>& gain,
                         const Tensor<T>& u, const Tensor<T>& s, bool joseph, Tensor<T>& workspace);

}  // namespace kwm
