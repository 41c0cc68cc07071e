// EnsembleCudaLearner: the device step, the lazily embedded mean and CPU-compatible checkpoints.
#include "core/lm/cuda/ensemble_cuda_learner.hpp"

#include <bit>
#include <stdexcept>
#include <utility>

#include "core/lm/learners/learner_state_keys.hpp"

namespace kwm::lm::cuda {
namespace {

std::string ensemble_member_key(int j) { return "member." + std::to_string(j); }

}  // namespace

EnsembleCudaLearner::EnsembleCudaLearner(const EnsembleConfig& config, const GptConfig& model,
                                         std::uint64_t seed, LmCollectives collectives)
    : device_(std::make_unique<EnsembleCuda>(config, model, seed, std::move(collectives))) {}

StepReport EnsembleCudaLearner::step(const TokenBatch& batch) {
  mean_.mark_stale();
  return device_->step(batch);
}

const GptParameters<double>& EnsembleCudaLearner::parameters() const {
  return mean_.get([this](GptParameters<double>& mean) { mean = device_->mean_parameters(); });
}

LearnerState EnsembleCudaLearner::state() const {
  const EnsembleCuda& e = *device_;
  LearnerState s;
  s.counters["step"] = e.steps();
  s.counters["members"] = e.config().members;
  s.counters["dimension"] = e.subspace().dimension();
  s.counters["seed"] = std::bit_cast<std::int64_t>(e.seed());
  for (int j = e.first_member(); j < e.last_member(); ++j)
    s.tensors[ensemble_member_key(j)] = e.members().col(j);
  if (e.collectives().rank == 0) s.tensors["base"] = e.subspace().base();
  return s;
}

void EnsembleCudaLearner::restore(const LearnerState& s) {
  const EnsembleCuda& e = *device_;
  const int j_total = e.config().members;
  const Eigen::Index n = e.subspace().dimension();
  const std::int64_t members = state_counter(s, "members");
  const std::int64_t dimension = state_counter(s, "dimension");
  if (members != j_total || dimension != n)
    throw std::invalid_argument("kwm-ensemble restore: state has " + std::to_string(members) +
                                " members of dimension " + std::to_string(dimension) +
                                "; this learner has " + std::to_string(j_total) + " of dimension " +
                                std::to_string(n));
  const std::int64_t step = state_counter(s, "step");
  const std::int64_t seed = state_counter(s, "seed");
  const Eigen::MatrixXd& base = state_tensor(s, "base", e.subspace().base().size(), 1);
  // Every rank keeps the whole ensemble: read every member, whoever wrote it.
  Eigen::MatrixXd restored(n, j_total);
  for (int j = 0; j < j_total; ++j) restored.col(j) = state_tensor(s, ensemble_member_key(j), n, 1);
  device_->restore(base.col(0), std::move(restored), step, std::bit_cast<std::uint64_t>(seed));
  mean_.mark_stale();
}

void EnsembleCudaLearner::shift_head_bias(const Eigen::VectorXd& delta) {
  GptParameters<double> shift = parameters().zeros_like();
  add_to_head_bias(shift, delta, name());
  device_->shift_base(shift.flatten());
  mean_.mark_stale();
}

std::unique_ptr<LanguageLearner> make_ensemble_cuda_learner(const YAML::Node& learner,
                                                            const GptConfig& model,
                                                            std::uint64_t seed,
                                                            const LmCollectives& collectives) {
  const std::string type = learner && learner["type"] ? learner["type"].as<std::string>() : "";
  if (type != "kwm-ensemble")
    throw std::invalid_argument(
        "make_ensemble_cuda_learner: learner.type must be kwm-ensemble; got '" + type + "'");
  return std::make_unique<EnsembleCudaLearner>(parse_ensemble_config(learner), model, seed,
                                               collectives);
}

}  // namespace kwm::lm::cuda
