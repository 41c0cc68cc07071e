// Process noise, forgetting and the trace cap for every block kind, in both forms.
#include "core/kalman/predict.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "core/kalman/jittered_cholesky.hpp"

namespace kwm {
namespace {

template <typename T>
Tensor<T> filled(Backend<T>& backend, Index rows, T value) {
  Tensor<T> t = backend.allocate(rows, 1);
  backend.fill(t, value);
  return t;
}

// Shared-row information form keeps B = W L in step with L.
template <typename T>
void refresh_information_vector(Backend<T>& backend, ParameterBlock<T>& block) {
  if (block.kind == BlockKind::shared_row && block.form == Form::information) {
    backend.gemm(Op::none, Op::none, T(1), block.mean, block.information, T(0),
                 block.information_vector);
  }
}

// L <- L - L (L + Q^-1)^-1 L, the information form of P <- P + Q (q_inverse = diag(Q^-1)).
template <typename T>
void add_noise_to_information(Backend<T>& backend, ParameterBlock<T>& block,
                              const Tensor<T>& q_inverse, const JitterConfig& jitter) {
  Tensor<T>& l = block.information;
  const Index n = l.rows();
  Tensor<T> m = backend.allocate(n, n);
  backend.copy(l, m);
  backend.add_diagonal(q_inverse, m);
  Tensor<T> factor = backend.allocate(n, n);
  const CholeskyOutcome<T> outcome = jittered_cholesky(backend, m, factor, jitter);
  block.counters.jitter_retries += outcome.retries;
  if (!outcome.ok) {
    std::ostringstream message;
    message << "block " << block.id << ": L + Q^-1 is not positive definite in process noise";
    throw std::runtime_error(message.str());
  }
  Tensor<T> x = backend.allocate(n, n);
  backend.copy(l, x);
  backend.cholesky_solve(factor, x);  // x = (L + Q^-1)^-1 L
  Tensor<T> lx = backend.allocate(n, n);
  backend.gemm(Op::none, Op::none, T(1), l, x, T(0), lx);
  backend.axpy(T(-1), lx, l);
  backend.symmetrize(l);
  refresh_information_vector(backend, block);
}

template <typename T>
void require_covariance_rows(const ParameterBlock<T>& block, const Tensor<T>& q) {
  const Index rows = block.second_moment().rows();
  if (q.rows() != rows || q.cols() != 1) {
    std::ostringstream message;
    message << "block " << block.id << ": process noise diag(q) must be " << rows << " x 1; got "
            << q.rows() << " x " << q.cols();
    throw std::invalid_argument(message.str());
  }
}

}  // namespace

template <typename T>
void add_process_noise(Backend<T>& backend, ParameterBlock<T>& block, T q,
                       const JitterConfig& jitter) {
  if (!(q >= T(0)) || !std::isfinite(q)) {
    std::ostringstream message;
    message << "process noise q must be finite and >= 0; got " << q;
    throw std::invalid_argument(message.str());
  }
  if (q == T(0)) return;
  const Index rows = block.second_moment().rows();
  if (block.form == Form::information) {
    add_noise_to_information(backend, block, filled(backend, rows, T(1) / q), jitter);
  } else if (block.kind == BlockKind::diagonal) {
    backend.axpy(q, filled(backend, rows, T(1)), block.covariance);
  } else {
    backend.add_identity(q, block.covariance);
  }
}

template <typename T>
void add_process_noise(Backend<T>& backend, ParameterBlock<T>& block, const Tensor<T>& q,
                       const JitterConfig& jitter) {
  require_covariance_rows(block, q);
  std::vector<T> host(static_cast<std::size_t>(q.rows()));
  backend.download(q, host.data());
  const bool information = block.form == Form::information;
  for (T& value : host) {
    if (!std::isfinite(value) || value < T(0) || (information && value == T(0))) {
      std::ostringstream message;
      message << "block " << block.id << ": process noise q_i must be finite and "
              << (information ? "> 0 in information form" : ">= 0") << "; got " << value;
      throw std::invalid_argument(message.str());
    }
    if (information) value = T(1) / value;
  }
  if (information) {
    Tensor<T> q_inverse = backend.allocate(q.rows(), 1);
    backend.upload(host.data(), q_inverse);
    add_noise_to_information(backend, block, q_inverse, jitter);
  } else if (block.kind == BlockKind::diagonal) {
    backend.axpy(T(1), q, block.covariance);
  } else {
    backend.add_diagonal(q, block.covariance);
  }
}

template <typename T>
void apply_forgetting(Backend<T>& backend, ParameterBlock<T>& block, T lambda) {
  if (!(lambda > T(0) && lambda <= T(1))) {
    std::ostringstream message;
    message << "forgetting factor lambda must be in (0, 1]; got " << lambda;
    throw std::invalid_argument(message.str());
  }
  if (lambda == T(1)) return;
  if (block.form == Form::information) {
    backend.scale(lambda, block.information);
    if (block.kind == BlockKind::shared_row) backend.scale(lambda, block.information_vector);
  } else {
    backend.scale(T(1) / lambda, block.covariance);
  }
}

template <typename T>
T covariance_trace(Backend<T>& backend, const ParameterBlock<T>& block) {
  if (block.form == Form::information) {
    const Index n = block.information.rows();
    Tensor<T> w = backend.allocate(n, 1);
    backend.symmetric_eigenvalues(block.information, w);
    std::vector<T> host(static_cast<std::size_t>(n));
    backend.download(w, host.data());
    T sum = T(0);
    for (const T value : host) sum += T(1) / value;
    return sum;
  }
  if (block.kind == BlockKind::diagonal) {
    return backend.dot(block.covariance, filled(backend, block.covariance.rows(), T(1)));
  }
  return backend.trace(block.covariance);
}

template <typename T>
bool cap_trace(Backend<T>& backend, ParameterBlock<T>& block, T cap) {
  if (!(cap > T(0))) return false;
  const T trace = covariance_trace(backend, block);
  if (!(trace > cap)) return false;
  const T factor = cap / trace;
  if (block.form == Form::information) {
    backend.scale(T(1) / factor, block.information);
    if (block.kind == BlockKind::shared_row) {
      backend.scale(T(1) / factor, block.information_vector);
    }
  } else {
    backend.scale(factor, block.covariance);
  }
  ++block.counters.trace_caps;
  return true;
}

template <typename T>
void predict(Backend<T>& backend, ParameterBlock<T>& block, const PredictConfig& config,
             const JitterConfig& jitter) {
  switch (config.dynamics) {
    case Dynamics::none:
      break;
    case Dynamics::process_noise:
      add_process_noise(backend, block, static_cast<T>(config.process_noise), jitter);
      break;
    case Dynamics::forgetting:
      apply_forgetting(backend, block, static_cast<T>(config.forgetting));
      break;
  }
  if (config.trace_cap > 0.0) cap_trace(backend, block, static_cast<T>(config.trace_cap));
}

#define KWM_INSTANTIATE(T)                                                                  \
  template void add_process_noise(Backend<T>&, ParameterBlock<T>&, T, const JitterConfig&); \
  template void add_process_noise(Backend<T>&, ParameterBlock<T>&, const Tensor<T>&,        \
                                  const JitterConfig&);                                     \
  template void apply_forgetting(Backend<T>&, ParameterBlock<T>&, T);                       \
  template T covariance_trace(Backend<T>&, const ParameterBlock<T>&);                       \
  template bool cap_trace(Backend<T>&, ParameterBlock<T>&, T);                              \
  template void predict(Backend<T>&, ParameterBlock<T>&, const PredictConfig&, const JitterConfig&);
KWM_INSTANTIATE(float)
KWM_INSTANTIATE(double)
#undef KWM_INSTANTIATE

}  // namespace kwm
