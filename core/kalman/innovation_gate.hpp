// Chi-square gating of the normalised innovation squared (ALGORITHMS.md section 6).
#pragma once

#include "core/backend/tensor.hpp"
#include "core/kalman/config.hpp"

namespace kwm {

enum class GateDecision { accept, reject, inflate };

struct GateOutcome {
  GateDecision decision = GateDecision::accept;
  double threshold = 0.0;  // chi-square quantile for m degrees of freedom (0 when gating is off)
  double inflation = 1.0;  // c >= 1: the update runs with S' = c S, i.e. R' = R + (c - 1) S
};

// Decides what to do with an innovation of NIS `nis` over m outputs. Inflate mode picks
// c = nis / threshold, so the inflated innovation has NIS exactly at the gate. The quantile is
// cached per m.
class InnovationGate {
 public:
  explicit InnovationGate(const GatingConfig& config);
  GateOutcome decide(double nis, Index m);
  double threshold(Index m);

 private:
  GatingConfig config_;
  Index cached_m_ = -1;
  double cached_threshold_ = 0.0;
};

}  // namespace kwm
