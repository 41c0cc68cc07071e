// YAML <-> KalmanLearnerConfig, with every key checked and named in errors.
#include "core/learners/kalman/kalman_learner_config.hpp"

#include <cmath>
#include <set>
#include <stdexcept>

namespace kwm {
namespace {

[[noreturn]] void fail(const std::string& key, const std::string& what) {
  throw std::invalid_argument("config key " + key + " " + what);
}

void check_keys(const YAML::Node& node, const std::string& prefix,
                const std::set<std::string>& allowed) {
  if (!node) return;
  if (!node.IsMap()) fail(prefix, "must be a mapping");
  for (const auto& entry : node) {
    const auto key = entry.first.as<std::string>();
    if (!allowed.contains(key)) {
      std::string known;
      for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
      fail(prefix + "." + key, "is not known; expected one of: " + known);
    }
  }
}

template <typename V>
V read(const YAML::Node& node, const std::string& key, const std::string& prefix, V fallback) {
  if (!node || !node[key]) return fallback;
  try {
    return node[key].as<V>();
  } catch (const YAML::Exception&) {
    fail(prefix + "." + key, "has the wrong type; got '" + YAML::Dump(node[key]) + "'");
  }
}

template <typename E>
E read_enum(const YAML::Node& node, const std::string& key, const std::string& prefix, E fallback,
            const std::vector<std::pair<std::string, E>>& names) {
  if (!node || !node[key]) return fallback;
  const auto value = read<std::string>(node, key, prefix, "");
  std::string known;
  for (const auto& [name, e] : names) {
    if (name == value) return e;
    known += (known.empty() ? "" : ", ") + name;
  }
  fail(prefix + "." + key, "must be one of " + known + "; got '" + value + "'");
}

const std::vector<std::pair<std::string, KalmanLearnerKind>> kKinds = {
    {"sensitivity-dekf", KalmanLearnerKind::sensitivity_dekf},
    {"dense-ekf", KalmanLearnerKind::dense_ekf},
    {"diagonal-ekf", KalmanLearnerKind::diagonal_ekf}};
const std::vector<std::pair<std::string, Blocking>> kBlockings = {
    {"per_group", Blocking::per_group}, {"per_unit", Blocking::per_unit}};
const std::vector<std::pair<std::string, Dynamics>> kDynamics = {
    {"none", Dynamics::none},
    {"process_noise", Dynamics::process_noise},
    {"forgetting", Dynamics::forgetting}};
const std::vector<std::pair<std::string, NoiseMode>> kNoise = {{"fixed", NoiseMode::fixed},
                                                               {"adaptive", NoiseMode::adaptive}};
const std::vector<std::pair<std::string, GateMode>> kGates = {
    {"off", GateMode::off}, {"reject", GateMode::reject}, {"inflate", GateMode::inflate}};

template <typename E>
std::string name_of(E value, const std::vector<std::pair<std::string, E>>& names) {
  for (const auto& [name, e] : names)
    if (e == value) return name;
  return "unknown";
}

}  // namespace

std::string to_string(KalmanLearnerKind kind) { return name_of(kind, kKinds); }
std::string to_string(Blocking blocking) { return name_of(blocking, kBlockings); }

bool is_kalman_learner(const std::string& type) {
  for (const auto& [name, kind] : kKinds)
    if (name == type) return true;
  return false;
}

void KalmanLearnerConfig::validate() const {
  if (!(initial_variance > 0.0) || !std::isfinite(initial_variance))
    fail("learner.initial_variance",
         "must be a finite number > 0; got " + std::to_string(initial_variance));
  if (project_every < 0)
    fail("learner.project_every", "must be >= 0; got " + std::to_string(project_every));
  if (backend != "cpu" && backend != "cuda")
    fail("learner.backend", "must be 'cpu' or 'cuda'; got '" + backend + "'");
  kalman.validate();
}

KalmanLearnerConfig kalman_learner_config(const YAML::Node& learner) {
  const std::string p = "learner";
  check_keys(learner, p,
             {"type", "blocking", "backend", "initial_variance", "project_every", "predict",
              "noise", "gating", "safeguards", "jitter"});
  KalmanLearnerConfig c;
  c.kind = read_enum(learner, "type", p, c.kind, kKinds);
  c.blocking = read_enum(learner, "blocking", p, c.blocking, kBlockings);
  c.backend = read(learner, "backend", p, c.backend);
  c.initial_variance = read(learner, "initial_variance", p, c.initial_variance);
  c.project_every = read(learner, "project_every", p, c.project_every);

  const auto predict = learner["predict"];
  check_keys(predict, p + ".predict", {"dynamics", "process_noise", "forgetting", "trace_cap"});
  auto& pr = c.kalman.predict;
  pr.dynamics = read_enum(predict, "dynamics", p + ".predict", pr.dynamics, kDynamics);
  pr.process_noise = read(predict, "process_noise", p + ".predict", pr.process_noise);
  pr.forgetting = read(predict, "forgetting", p + ".predict", pr.forgetting);
  pr.trace_cap = read(predict, "trace_cap", p + ".predict", pr.trace_cap);

  const auto noise = learner["noise"];
  check_keys(noise, p + ".noise", {"mode", "variance", "ema", "floor"});
  auto& no = c.kalman.noise;
  no.mode = read_enum(noise, "mode", p + ".noise", no.mode, kNoise);
  no.variance = read(noise, "variance", p + ".noise", no.variance);
  no.ema = read(noise, "ema", p + ".noise", no.ema);
  no.floor = read(noise, "floor", p + ".noise", no.floor);

  const auto gating = learner["gating"];
  check_keys(gating, p + ".gating", {"mode", "probability"});
  auto& ga = c.kalman.update.gating;
  ga.mode = read_enum(gating, "mode", p + ".gating", ga.mode, kGates);
  ga.probability = read(gating, "probability", p + ".gating", ga.probability);

  const auto safe = learner["safeguards"];
  check_keys(safe, p + ".safeguards", {"joseph", "eigen_floor", "eigen_ceiling", "clamp_every"});
  auto& sa = c.kalman.update.safeguards;
  sa.joseph = read(safe, "joseph", p + ".safeguards", sa.joseph);
  sa.eigen_floor = read(safe, "eigen_floor", p + ".safeguards", sa.eigen_floor);
  sa.eigen_ceiling = read(safe, "eigen_ceiling", p + ".safeguards", sa.eigen_ceiling);
  sa.clamp_every = read(safe, "clamp_every", p + ".safeguards", sa.clamp_every);

  const auto jitter = learner["jitter"];
  check_keys(jitter, p + ".jitter", {"initial_relative", "growth", "max_retries"});
  auto& ji = c.kalman.update.jitter;
  ji.initial_relative = read(jitter, "initial_relative", p + ".jitter", ji.initial_relative);
  ji.growth = read(jitter, "growth", p + ".jitter", ji.growth);
  ji.max_retries = read(jitter, "max_retries", p + ".jitter", ji.max_retries);

  c.validate();
  return c;
}

YAML::Node to_yaml(const KalmanLearnerConfig& c) {
  YAML::Node n;
  n["type"] = to_string(c.kind);
  n["blocking"] = to_string(c.blocking);
  n["backend"] = c.backend;
  n["initial_variance"] = c.initial_variance;
  n["project_every"] = c.project_every;
  const auto& pr = c.kalman.predict;
  n["predict"]["dynamics"] = name_of(pr.dynamics, kDynamics);
  n["predict"]["process_noise"] = pr.process_noise;
  n["predict"]["forgetting"] = pr.forgetting;
  n["predict"]["trace_cap"] = pr.trace_cap;
  const auto& no = c.kalman.noise;
  n["noise"]["mode"] = name_of(no.mode, kNoise);
  n["noise"]["variance"] = no.variance;
  n["noise"]["ema"] = no.ema;
  n["noise"]["floor"] = no.floor;
  const auto& ga = c.kalman.update.gating;
  n["gating"]["mode"] = name_of(ga.mode, kGates);
  n["gating"]["probability"] = ga.probability;
  const auto& sa = c.kalman.update.safeguards;
  n["safeguards"]["joseph"] = sa.joseph;
  n["safeguards"]["eigen_floor"] = sa.eigen_floor;
  n["safeguards"]["eigen_ceiling"] = sa.eigen_ceiling;
  n["safeguards"]["clamp_every"] = sa.clamp_every;
  const auto& ji = c.kalman.update.jitter;
  n["jitter"]["initial_relative"] = ji.initial_relative;
  n["jitter"]["growth"] = ji.growth;
  n["jitter"]["max_retries"] = ji.max_retries;
  return n;
}

}  // namespace kwm
