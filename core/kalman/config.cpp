// Validation of the Kalman layer's config: each message names the key, the valid range and the
// value.
#include "core/kalman/config.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace kwm {
namespace {

[[noreturn]] void reject(const std::string& key, const std::string& range, double value) {
  std::ostringstream message;
  message << "learner." << key << " must be " << range << "; got " << value;
  throw std::invalid_argument(message.str());
}

void require_open_closed(const std::string& key, double value, double lo, double hi) {
  if (!(value > lo && value <= hi)) {
    std::ostringstream range;
    range << "in (" << lo << ", " << hi << "]";
    reject(key, range.str(), value);
  }
}

void require_open(const std::string& key, double value, double lo, double hi) {
  if (!(value > lo && value < hi)) {
    std::ostringstream range;
    range << "in (" << lo << ", " << hi << ")";
    reject(key, range.str(), value);
  }
}

void require_positive(const std::string& key, double value) {
  if (!(value > 0.0) || !std::isfinite(value)) reject(key, "finite and > 0", value);
}

void require_non_negative(const std::string& key, double value) {
  if (!(value >= 0.0) || !std::isfinite(value)) reject(key, "finite and >= 0", value);
}

}  // namespace

void PredictConfig::validate() const {
  require_non_negative("process_noise", process_noise);
  require_open_closed("forgetting", forgetting, 0.0, 1.0);
  require_non_negative("trace_cap", trace_cap);
}

void JitterConfig::validate() const {
  require_positive("jitter.initial_relative", initial_relative);
  if (!(growth > 1.0) || !std::isfinite(growth)) {
    reject("jitter.growth", "finite and > 1", growth);
  }
  if (max_retries < 0) reject("jitter.max_retries", ">= 0", max_retries);
}

void GatingConfig::validate() const { require_open("gating.probability", probability, 0.0, 1.0); }

void NoiseConfig::validate() const {
  require_positive("noise.variance", variance);
  require_open("noise.ema", ema, 0.0, 1.0);
  require_positive("noise.floor", floor);
}

void SafeguardConfig::validate() const {
  require_non_negative("eigen_floor", eigen_floor);
  if (!(eigen_ceiling > eigen_floor)) {
    std::ostringstream range;
    range << "> learner.eigen_floor (" << eigen_floor << ")";
    reject("eigen_ceiling", range.str(), eigen_ceiling);
  }
  if (clamp_every < 0) reject("clamp_every", ">= 0", static_cast<double>(clamp_every));
}

void UpdateConfig::validate() const {
  jitter.validate();
  gating.validate();
  safeguards.validate();
}

void KalmanConfig::validate() const {
  predict.validate();
  update.validate();
  noise.validate();
}

}  // namespace kwm
