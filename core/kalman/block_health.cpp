// Health figures of a block from its eigenvalues or variances.
#include "core/kalman/block_health.hpp"

#include <algorithm>
#include <limits>
#include <sstream>
#include <vector>

namespace kwm {

template <typename T>
BlockHealth block_health(Backend<T>& backend, const ParameterBlock<T>& block) {
  BlockHealth health;
  health.id = block.id;
  health.kind = block.kind;
  health.form = block.form;
  health.counters = block.counters;
  const Tensor<T>& stored = block.second_moment();
  health.finite = backend.all_finite(block.mean) && backend.all_finite(stored);

  const Index n = stored.rows();
  std::vector<double> eigenvalues(static_cast<std::size_t>(n));
  {
    std::vector<T> host(static_cast<std::size_t>(n));
    if (block.kind == BlockKind::diagonal) {
      backend.download(stored, host.data());
    } else {
      Tensor<T> w = backend.allocate(n, 1);
      backend.symmetric_eigenvalues(stored, w);
      backend.download(w, host.data());
    }
    for (std::size_t i = 0; i < host.size(); ++i) {
      const double value = static_cast<double>(host[i]);
      eigenvalues[i] = block.form == Form::information ? 1.0 / value : value;
    }
  }
  double trace = 0.0;
  for (const double value : eigenvalues) trace += value;
  health.trace = block.form == Form::covariance && block.kind != BlockKind::diagonal
                     ? static_cast<double>(backend.trace(stored))
                     : trace;
  const auto [min_it, max_it] = std::minmax_element(eigenvalues.begin(), eigenvalues.end());
  health.min_eigenvalue = *min_it;
  health.max_eigenvalue = *max_it;
  health.condition = health.min_eigenvalue > 0.0 ? health.max_eigenvalue / health.min_eigenvalue
                                                 : std::numeric_limits<double>::infinity();
  return health;
}

std::string to_string(const BlockHealth& health) {
  std::ostringstream line;
  line << "block " << health.id << ' ' << to_string(health.kind) << '/' << to_string(health.form)
       << (health.finite ? "" : " NONFINITE") << " trace=" << health.trace << " eig=["
       << health.min_eigenvalue << ", " << health.max_eigenvalue << "] cond=" << health.condition
       << " updates=" << health.counters.updates << " skips=" << health.counters.skips
       << " nonfinite=" << health.counters.nonfinite
       << " cholesky_failures=" << health.counters.cholesky_failures
       << " gated=" << health.counters.gated << " inflated=" << health.counters.inflated
       << " jitter_retries=" << health.counters.jitter_retries
       << " eigen_clamps=" << health.counters.eigen_clamps
       << " trace_caps=" << health.counters.trace_caps;
  return line.str();
}

template BlockHealth block_health(Backend<float>&, const ParameterBlock<float>&);
template BlockHealth block_health(Backend<double>&, const ParameterBlock<double>&);

}  // namespace kwm
