// Fixed and adaptive observation noise R.
#include "core/kalman/observation_noise.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "core/backend/host_transfer.hpp"

namespace kwm {

template <typename T>
ObservationNoise<T>::ObservationNoise(const NoiseConfig& config) : config_(config) {
  config_.validate();
}

template <typename T>
const Tensor<T>& ObservationNoise<T>::covariance(Backend<T>& backend, Index m) {
  if (user_matrix_) {
    if (r_.rows() != m) {
      std::ostringstream message;
      message << "observation noise: R was set as " << r_.rows() << " x " << r_.cols()
              << " but the observation has " << m << " outputs";
      throw std::invalid_argument(message.str());
    }
    return r_;
  }
  const auto m_size = static_cast<std::size_t>(m);
  if (estimate_.size() != m_size) {
    if (adaptive() && !estimate_.empty()) {
      std::ostringstream message;
      message << "observation noise: adaptive R has " << estimate_.size()
              << " outputs but the observation has " << m;
      throw std::invalid_argument(message.str());
    }
    estimate_.assign(m_size, static_cast<T>(config_.variance));
    stale_ = true;
  }
  if (stale_ || r_.rows() != m) {
    HostMatrix<T> r = HostMatrix<T>::Zero(m, m);
    const T floor = static_cast<T>(config_.floor);
    for (Index i = 0; i < m; ++i) {
      r(i, i) = adaptive() ? std::max(floor, estimate_[static_cast<std::size_t>(i)])
                           : static_cast<T>(config_.variance);
    }
    r_ = to_backend(backend, r);
    stale_ = false;
  }
  return r_;
}

template <typename T>
void ObservationNoise<T>::set_covariance(Backend<T>& backend, const Tensor<T>& r) {
  if (adaptive()) {
    throw std::invalid_argument("observation noise: set_covariance needs learner.noise.mode fixed");
  }
  if (!r.is_square() || r.empty()) {
    std::ostringstream message;
    message << "observation noise: R must be square and non-empty; got " << r.rows() << " x "
            << r.cols();
    throw std::invalid_argument(message.str());
  }
  r_ = backend.allocate(r.rows(), r.cols());
  backend.copy(r, r_);
  user_matrix_ = true;
}

template <typename T>
void ObservationNoise<T>::adapt(const std::vector<T>& innovation,
                                const std::vector<T>& predicted_variance) {
  if (!adaptive()) return;
  if (innovation.size() != estimate_.size() || predicted_variance.size() != estimate_.size()) {
    std::ostringstream message;
    message << "observation noise: adapt needs " << estimate_.size() << " innovations; got "
            << innovation.size() << " and " << predicted_variance.size() << " variances";
    throw std::invalid_argument(message.str());
  }
  const T beta = static_cast<T>(config_.ema);
  for (std::size_t i = 0; i < estimate_.size(); ++i) {
    const T sample = innovation[i] * innovation[i] - predicted_variance[i];
    estimate_[i] = beta * estimate_[i] + (T(1) - beta) * sample;
  }
  stale_ = true;
}

template class ObservationNoise<float>;
template class ObservationNoise<double>;

}  // namespace kwm
