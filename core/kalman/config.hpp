// Configuration of the Kalman layer: predict dynamics, observation noise, gating and safeguards.
// Every struct validates itself and throws std::invalid_argument naming the config key.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

namespace kwm {

// Parameter dynamics of ALGORITHMS.md section 1.
enum class Dynamics { none, process_noise, forgetting };

struct PredictConfig {
  Dynamics dynamics = Dynamics::none;
  double process_noise = 0.0;  // q in P <- P + q I, >= 0
  double forgetting = 1.0;     // lambda in P <- P / lambda, in (0, 1]
  double trace_cap = 0.0;      // scale P down when trace(P) > cap; 0 disables
  void validate() const;
};

// Cholesky with escalating jitter (section 7): try S, then S + j I with
// j = initial_relative * trace(S) / m, multiplied by growth on each retry, then skip.
struct JitterConfig {
  double initial_relative = 1e-9;
  double growth = 10.0;
  int max_retries = 8;
  void validate() const;
};

// Innovation gating on NIS = e^T S^-1 e against the chi-square quantile of m degrees of freedom.
enum class GateMode { off, reject, inflate };

struct GatingConfig {
  GateMode mode = GateMode::off;
  double probability = 0.999;  // quantile level, in (0, 1)
  void validate() const;
};

// Observation noise R: fixed (R = variance I unless a full matrix is set) or adaptive
// (diagonal, Sage-Husa EMA of e_i^2 - (H P H^T)_ii, floored).
enum class NoiseMode { fixed, adaptive };

struct NoiseConfig {
  NoiseMode mode = NoiseMode::fixed;
  double variance = 1.0;  // R = variance I, and the adaptive estimate's starting value; > 0
  double ema = 0.99;      // adaptive: weight of the old estimate, in (0, 1)
  double floor = 1e-8;    // adaptive: lower bound of every R_ii, > 0
  void validate() const;
};

// Covariance safeguards applied inside the update (section 7).
struct SafeguardConfig {
  bool joseph = false;       // stabilised downdate P - K U^T - U K^T + K S K^T instead of P - K U^T
  double eigen_floor = 0.0;  // covariance eigenvalue floor
  double eigen_ceiling = std::numeric_limits<double>::infinity();  // covariance eigenvalue ceiling
  std::int64_t clamp_every = 0;  // clamp eigenvalues every k applied updates; 0 disables
  void validate() const;
};

struct UpdateConfig {
  JitterConfig jitter;
  GatingConfig gating;
  SafeguardConfig safeguards;
  void validate() const;
};

// Everything a Kalman learner needs, under the "learner." config prefix.
struct KalmanConfig {
  PredictConfig predict;
  UpdateConfig update;
  NoiseConfig noise;
  void validate() const;
};

}  // namespace kwm
