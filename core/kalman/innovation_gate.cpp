// NIS gate: reject or inflate against the chi-square quantile.
#include "core/kalman/innovation_gate.hpp"

#include "core/kalman/chi_square.hpp"

namespace kwm {

InnovationGate::InnovationGate(const GatingConfig& config) : config_(config) { config_.validate(); }

double InnovationGate::threshold(Index m) {
  if (m != cached_m_) {
    cached_threshold_ = chi_square_quantile(config_.probability, static_cast<double>(m));
    cached_m_ = m;
  }
  return cached_threshold_;
}

GateOutcome InnovationGate::decide(double nis, Index m) {
  GateOutcome outcome;
  if (config_.mode == GateMode::off) return outcome;
  outcome.threshold = threshold(m);
  if (!(nis > outcome.threshold)) return outcome;
  if (config_.mode == GateMode::reject) {
    outcome.decision = GateDecision::reject;
  } else {
    outcome.decision = GateDecision::inflate;
    outcome.inflation = nis / outcome.threshold;
  }
  return outcome;
}

}  // namespace kwm
