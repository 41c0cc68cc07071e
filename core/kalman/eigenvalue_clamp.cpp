// Eigenvalue floors and ceilings in covariance terms, for every block kind and form.
#include "core/kalman/eigenvalue_clamp.hpp"

#include <algorithm>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace kwm {

template <typename T>
Index clamp_covariance_eigenvalues(Backend<T>& backend, ParameterBlock<T>& block, T floor,
                                   T ceiling) {
  if (!(floor >= T(0) && ceiling > floor)) {
    std::ostringstream message;
    message << "eigenvalue clamp needs 0 <= floor < ceiling; got floor " << floor << ", ceiling "
            << ceiling;
    throw std::invalid_argument(message.str());
  }
  Index moved = 0;
  if (block.form == Form::information) {
    const T infinity = std::numeric_limits<T>::infinity();
    const T lower = ceiling == infinity ? T(0) : T(1) / ceiling;
    const T upper = floor == T(0) ? infinity : T(1) / floor;
    moved = backend.clamp_eigenvalues(block.information, lower, upper);
    if (block.kind == BlockKind::shared_row && moved > 0) {
      backend.gemm(Op::none, Op::none, T(1), block.mean, block.information, T(0),
                   block.information_vector);
    }
  } else if (block.kind == BlockKind::diagonal) {
    // n values cross to the host; this runs on demand or every k updates, not per update.
    std::vector<T> host(static_cast<std::size_t>(block.covariance.rows()));
    backend.download(block.covariance, host.data());
    for (T& value : host) {
      const T clamped = std::clamp(value, floor, ceiling);
      if (clamped != value) ++moved;
      value = clamped;
    }
    if (moved > 0) backend.upload(host.data(), block.covariance);
  } else {
    moved = backend.clamp_eigenvalues(block.covariance, floor, ceiling);
  }
  block.counters.eigen_clamps += moved;
  return moved;
}

template <typename T>
Index clamp_if_due(Backend<T>& backend, ParameterBlock<T>& block, const SafeguardConfig& config) {
  if (config.clamp_every <= 0 || block.counters.updates % config.clamp_every != 0) return 0;
  return clamp_covariance_eigenvalues(backend, block, static_cast<T>(config.eigen_floor),
                                      static_cast<T>(config.eigen_ceiling));
}

#define KWM_INSTANTIATE(T)                                                            \
  template Index clamp_covariance_eigenvalues(Backend<T>&, ParameterBlock<T>&, T, T); \
  template Index clamp_if_due(Backend<T>&, ParameterBlock<T>&, const SafeguardConfig&);
KWM_INSTANTIATE(float)
KWM_INSTANTIATE(double)
#undef KWM_INSTANTIATE

}  // namespace kwm
