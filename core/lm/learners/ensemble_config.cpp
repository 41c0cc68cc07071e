// YAML -> EnsembleConfig with every key checked.
#include "core/lm/learners/ensemble_config.hpp"

#include <cmath>
#include <string>

#include "core/lm/learners/learner_options.hpp"

namespace kwm::lm {

void EnsembleConfig::validate() const {
  if (members < 2) fail_option("learner.members", "must be >= 2; got " + std::to_string(members));
  if (!(initial_std > 0.0) || !std::isfinite(initial_std))
    fail_option("learner.initial_std",
                "must be a finite number > 0; got " + std::to_string(initial_std));
  if (!(observation_noise > 0.0) || !std::isfinite(observation_noise))
    fail_option("learner.observation_noise",
                "must be a finite number > 0; got " + std::to_string(observation_noise));
  if (!(noise_floor > 0.0) || !std::isfinite(noise_floor))
    fail_option("learner.noise_floor",
                "must be a finite number > 0; got " + std::to_string(noise_floor));
  if (!(inflation >= 1.0) || !std::isfinite(inflation))
    fail_option("learner.inflation",
                "must be a finite number >= 1; got " + std::to_string(inflation));
  if (!(process_noise >= 0.0) || !std::isfinite(process_noise))
    fail_option("learner.process_noise",
                "must be a finite number >= 0; got " + std::to_string(process_noise));
  if (!(process_noise_halflife >= 0.0) || !std::isfinite(process_noise_halflife))
    fail_option("learner.process_noise_halflife",
                "must be a finite number >= 0; got " + std::to_string(process_noise_halflife));
  if (antithetic && members % 2 != 0)
    fail_option("learner.antithetic",
                "needs an even learner.members (mirrored pairs); got " + std::to_string(members));
}

EnsembleConfig parse_ensemble_config(const YAML::Node& learner) {
  const std::string p = "learner";
  check_option_keys(
      learner, p,
      {"type", "members", "subspace", "initial_std", "observation", "observation_noise",
       "noise_floor", "inflation", "process_noise", "process_noise_mode", "process_noise_halflife",
       "perturb_observations", "antithetic"});
  const auto type = read_option<std::string>(learner, "type", p, "kwm-ensemble");
  if (type != "kwm-ensemble")
    fail_option(p + ".type", "must be kwm-ensemble for this learner; got '" + type + "'");
  EnsembleConfig c;
  c.members = read_option(learner, "members", p, c.members);
  c.subspace = parse_subspace(learner ? learner["subspace"] : YAML::Node(), p + ".subspace");
  c.initial_std = read_option(learner, "initial_std", p, c.initial_std);
  const auto observation = read_option<std::string>(learner, "observation", p, "nll_residual");
  if (observation == "target_probability") {
    c.observation = EnsembleObservation::target_probability;
  } else if (observation == "nll_residual") {
    c.observation = EnsembleObservation::nll_residual;
  } else {
    fail_option(p + ".observation",
                "must be one of target_probability, nll_residual; got '" + observation + "'");
  }
  c.observation_noise = read_option(learner, "observation_noise", p, c.observation_noise);
  c.noise_floor = read_option(learner, "noise_floor", p, c.noise_floor);
  c.inflation = read_option(learner, "inflation", p, c.inflation);
  c.process_noise = read_option(learner, "process_noise", p, c.process_noise);
  const auto mode = read_option<std::string>(learner, "process_noise_mode", p, "centered");
  if (mode == "walk") {
    c.process_noise_mode = EnsembleConfig::ProcessNoiseMode::walk;
  } else if (mode == "centered") {
    c.process_noise_mode = EnsembleConfig::ProcessNoiseMode::centered;
  } else {
    fail_option(p + ".process_noise_mode", "must be one of walk, centered; got '" + mode + "'");
  }
  c.process_noise_halflife =
      read_option(learner, "process_noise_halflife", p, c.process_noise_halflife);
  c.perturb_observations = read_option(learner, "perturb_observations", p, c.perturb_observations);
  c.antithetic = read_option(learner, "antithetic", p, c.antithetic);
  c.validate();
  return c;
}

}  // namespace kwm::lm
