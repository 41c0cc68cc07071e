// MeZO: two forward passes at theta +- eps z, one scalar all-reduce, a step along z.
#include "core/lm/learners/mezo_learner.hpp"

#include <bit>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "core/lm/cross_entropy.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/ensemble_random.hpp"
#include "core/lm/learners/learner_options.hpp"
#include "core/lm/learners/learner_state_keys.hpp"
#include "core/lm/learners/rank_collectives.hpp"

namespace kwm::lm {
void MezoConfig::validate() const {
  schedule.validate("learner");
  if (!(epsilon > 0.0) || !std::isfinite(epsilon))
    fail_option("learner.epsilon", "must be a finite number > 0; got " + std::to_string(epsilon));
  if (!(weight_decay >= 0.0) || !std::isfinite(weight_decay))
    fail_option("learner.weight_decay",
                "must be a finite number >= 0; got " + std::to_string(weight_decay));
}

MezoConfig parse_mezo_config(const YAML::Node& learner) {
  const std::string p = "learner";
  check_option_keys(learner, p,
                    {"type", "learning_rate", "schedule", "warmup_steps", "total_steps",
                     "min_learning_rate", "epsilon", "weight_decay", "subspace"});
  const auto type = read_option<std::string>(learner, "type", p, "mezo");
  if (type != "mezo") fail_option(p + ".type", "must be mezo for this learner; got '" + type + "'");
  MezoConfig c;
  c.schedule = parse_schedule(learner, p, 1e-6);
  c.epsilon = read_option(learner, "epsilon", p, c.epsilon);
  c.weight_decay = read_option(learner, "weight_decay", p, c.weight_decay);
  c.subspace = parse_subspace(learner ? learner["subspace"] : YAML::Node(), p + ".subspace");
  c.validate();
  return c;
}

MezoLearner::MezoLearner(const MezoConfig& config, const GptConfig& model, std::uint64_t seed,
                         LmCollectives collectives)
    : config_(config),
      seed_(seed),
      collectives_(std::move(collectives)),
      subspace_(config.subspace, GptParameters<double>::init(model, seed)),
      coordinates_(subspace_.origin()),
      parameters_(GptParameters<double>::zeros(model)),
      scratch_(GptParameters<double>::zeros(model)) {
  config_.validate();
  validate_collectives(collectives_, "mezo");
  subspace_.embed(coordinates_, parameters_);
}

Eigen::VectorXd MezoLearner::direction(std::uint64_t seed, std::int64_t step, Eigen::Index n) {
  return counter_normal_vector(
      stream_seed(seed, RandomPurpose::mezo_direction, static_cast<std::uint64_t>(step), 0), n);
}

double MezoLearner::loss_sum(const Eigen::VectorXd& u, const TokenBatch& batch,
                             const Matrix<double>* normalized) {
  subspace_.embed(u, scratch_);
  const Matrix<double> logits = normalized != nullptr ? head_logits(scratch_, *normalized)
                                                      : forward(scratch_, batch, nullptr);
  return cross_entropy(logits, batch.targets).total_nll;
}

StepReport MezoLearner::step(const TokenBatch& batch) {
  validate_batch(parameters_.config, batch);
  StepReport report;
  report.tokens = batch.tokens();
  const std::int64_t t = steps_ + 1;
  const Eigen::VectorXd z = direction(seed_, t, coordinates_.size());
  const double eps = config_.epsilon;
  double sums[3] = {0.0, 0.0, static_cast<double>(batch.tokens())};  // L+ total, L- total, tokens
  if (batch.tokens() > 0) {
    // A subspace that leaves the body at the base (head): one body pass serves both perturbed
    // points, which differ only in ln_f and the head. Both still count as forward passes.
    Matrix<double> normalized;
    if (subspace_.body_fixed()) normalized = body_normalized(parameters_, batch);
    const Matrix<double>* shared = subspace_.body_fixed() ? &normalized : nullptr;
    sums[0] = loss_sum(coordinates_ + eps * z, batch, shared);
    sums[1] = loss_sum(coordinates_ - eps * z, batch, shared);
    report.nll_before = 0.5 * (sums[0] + sums[1]) / sums[2];
    report.forward_passes = 2;
  }
  sum_over_ranks(collectives_, sums, 3);
  const double tokens = sums[2];
  const double g = tokens > 0 ? (sums[0] - sums[1]) / tokens / (2.0 * eps) : 0.0;
  steps_ = t;  // the step seed advances even on a skip, so the direction sequence is fixed
  const bool skip = any_rank(collectives_, !(tokens > 0) || !std::isfinite(g));
  report.skipped = skip;
  if (skip) return report;
  projected_gradient_ = g;
  const double lr = config_.schedule.at(t);
  if (config_.weight_decay > 0.0) coordinates_ *= 1.0 - lr * config_.weight_decay;
  coordinates_ -= (lr * g) * z;
  subspace_.embed(coordinates_, parameters_);
  return report;
}

LearnerState write_mezo_state(std::int64_t step, std::uint64_t seed, const Eigen::VectorXd& u,
                              const Eigen::VectorXd& base, int rank) {
  LearnerState s;
  s.counters["step"] = step;
  s.counters["seed"] = std::bit_cast<std::int64_t>(seed);
  if (rank == 0) {
    s.tensors["coordinates"] = u;
    s.tensors["base"] = base;
  }
  return s;
}

MezoState read_mezo_state(const LearnerState& s, Eigen::Index n, Eigen::Index P) {
  MezoState state;
  state.step = state_counter(s, "step");
  state.seed = std::bit_cast<std::uint64_t>(state_counter(s, "seed"));
  state.coordinates = state_tensor(s, "coordinates", n, 1).col(0);
  state.base = state_tensor(s, "base", P, 1).col(0);
  return state;
}

LearnerState MezoLearner::state() const {
  return write_mezo_state(steps_, seed_, coordinates_, subspace_.base(), collectives_.rank);
}

void MezoLearner::restore(const LearnerState& s) {
  MezoState r = read_mezo_state(s, coordinates_.size(), subspace_.base().size());
  subspace_.set_base(r.base);
  coordinates_ = std::move(r.coordinates);
  steps_ = r.step;
  seed_ = r.seed;
  subspace_.embed(coordinates_, parameters_);
}

void MezoLearner::shift_head_bias(const Eigen::VectorXd& delta) {
  GptParameters<double> shift = parameters_.zeros_like();
  add_to_head_bias(shift, delta, name());
  Eigen::MatrixXd u = coordinates_;
  subspace_.shift_base(shift.flatten(), u);
  coordinates_ = u.col(0);
  subspace_.embed(coordinates_, parameters_);
}

std::unique_ptr<LanguageLearner> make_mezo_learner(const YAML::Node& learner,
                                                   const GptConfig& model, std::uint64_t seed,
                                                   LmCollectives collectives) {
  return std::make_unique<MezoLearner>(parse_mezo_config(learner), model, seed,
                                       std::move(collectives));
}

}  // namespace kwm::lm
