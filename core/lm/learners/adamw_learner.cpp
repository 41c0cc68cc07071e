// AdamW on transposed-Jacobian gradients; config parsing.
#include "core/lm/learners/adamw_learner.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/lm/cross_entropy.hpp"
#include "core/lm/gpt_backward.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/learner_options.hpp"
#include "core/lm/learners/learner_state_keys.hpp"
#include "core/lm/learners/rank_collectives.hpp"

namespace kwm::lm {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void AdamWConfig::validate() const {
  schedule.validate("learner");
  if (!(beta1 >= 0.0 && beta1 < 1.0))
    fail_option("learner.beta1", "must be in [0, 1); got " + std::to_string(beta1));
  if (!(beta2 >= 0.0 && beta2 < 1.0))
    fail_option("learner.beta2", "must be in [0, 1); got " + std::to_string(beta2));
  if (!(epsilon > 0.0) || !std::isfinite(epsilon))
    fail_option("learner.epsilon", "must be a finite number > 0; got " + std::to_string(epsilon));
  if (!(weight_decay >= 0.0) || !std::isfinite(weight_decay))
    fail_option("learner.weight_decay",
                "must be a finite number >= 0; got " + std::to_string(weight_decay));
  if (!(gradient_clip >= 0.0) || !std::isfinite(gradient_clip))
    fail_option("learner.gradient_clip",
                "must be a finite number >= 0 (0 = off); got " + std::to_string(gradient_clip));
}

AdamWConfig parse_adamw_config(const YAML::Node& learner) {
  const std::string p = "learner";
  check_option_keys(
      learner, p,
      {"type", "learning_rate", "schedule", "warmup_steps", "total_steps", "min_learning_rate",
       "beta1", "beta2", "epsilon", "weight_decay", "weight_decay_on", "gradient_clip"});
  const auto type = read_option<std::string>(learner, "type", p, "adamw");
  if (type != "adamw")
    fail_option(p + ".type", "must be adamw for this learner; got '" + type + "'");
  AdamWConfig c;
  c.schedule = parse_schedule(learner, p, 1e-3);
  c.beta1 = read_option(learner, "beta1", p, c.beta1);
  c.beta2 = read_option(learner, "beta2", p, c.beta2);
  c.epsilon = read_option(learner, "epsilon", p, c.epsilon);
  c.weight_decay = read_option(learner, "weight_decay", p, c.weight_decay);
  const auto on = read_option<std::string>(learner, "weight_decay_on", p, "matrices");
  if (on != "matrices" && on != "all")
    fail_option(p + ".weight_decay_on", "must be one of matrices, all; got '" + on + "'");
  c.decay_vectors = on == "all";
  c.gradient_clip = read_option(learner, "gradient_clip", p, c.gradient_clip);
  c.validate();
  return c;
}

AdamWLearner::AdamWLearner(const AdamWConfig& config, const GptConfig& model, std::uint64_t seed,
                           LmCollectives collectives)
    : config_(config),
      collectives_(std::move(collectives)),
      parameters_(GptParameters<double>::init(model, seed)) {
  config_.validate();
  validate_collectives(collectives_, "adamw");
  const Eigen::Index p = parameters_.size();
  decay_mask_.resize(p);
  Eigen::Index offset = 0;
  for (const auto& t : parameters_.tensors()) {
    const bool matrix = ends_with(t.name, "weight") || ends_with(t.name, "_embedding");
    decay_mask_.segment(offset, t.size()).setConstant(matrix || config_.decay_vectors ? 1.0 : 0.0);
    offset += t.size();
  }
  first_moment_ = Eigen::VectorXd::Zero(p);
  second_moment_ = Eigen::VectorXd::Zero(p);
  gradient_ = Eigen::VectorXd::Zero(p);
}

StepReport AdamWLearner::step(const TokenBatch& batch) {
  validate_batch(parameters_.config, batch);
  StepReport report;
  report.tokens = batch.tokens();
  const Eigen::Index p = parameters_.size();
  // [sum over this rank's tokens of d NLL / d theta (P), tokens]: one all-reduce.
  Eigen::VectorXd sums = Eigen::VectorXd::Zero(p + 1);
  if (batch.tokens() > 0) {
    ForwardCache<double> cache;
    const Matrix<double> logits = forward(parameters_, batch, &cache);
    const CrossEntropy<double> loss = cross_entropy(logits, batch.targets);
    report.nll_before = loss.mean_nll;
    const TransposedJacobian<double> tj =
        transpose_jacobian(parameters_, cache, output_innovation(loss, batch.targets));
    sums.head(p) = -tj.parameters.flatten();
    sums(p) = static_cast<double>(batch.tokens());
    report.forward_passes = 1;
    report.transposed_jacobian_passes = 1;
  }
  sum_over_ranks(collectives_, sums.data(), static_cast<std::size_t>(sums.size()));
  const double tokens = sums(p);
  gradient_ = tokens > 0 ? Eigen::VectorXd(sums.head(p) / tokens) : Eigen::VectorXd::Zero(p);
  const bool skip = any_rank(collectives_, !(tokens > 0) || !gradient_.allFinite());
  report.skipped = skip;
  if (skip) return report;

  Eigen::VectorXd g = gradient_;
  if (config_.gradient_clip > 0.0) {
    const double norm = g.norm();
    if (norm > config_.gradient_clip) g *= config_.gradient_clip / norm;
  }
  ++steps_;
  learning_rate_ = config_.schedule.at(steps_);
  const double b1 = config_.beta1, b2 = config_.beta2;
  first_moment_ = b1 * first_moment_ + (1.0 - b1) * g;
  second_moment_ = b2 * second_moment_ + (1.0 - b2) * g.cwiseAbs2();
  const double t = static_cast<double>(steps_);
  const double correction1 = 1.0 - std::pow(b1, t);
  const double correction2 = 1.0 - std::pow(b2, t);
  Eigen::VectorXd theta = parameters_.flatten();
  theta.array() *= 1.0 - learning_rate_ * config_.weight_decay * decay_mask_.array();
  theta.array() -= (learning_rate_ / correction1) * first_moment_.array() /
                   (second_moment_.array().sqrt() / std::sqrt(correction2) + config_.epsilon);
  parameters_.unflatten(theta);
  return report;
}

LearnerState AdamWLearner::state() const {
  LearnerState s;
  s.counters["step"] = steps_;
  if (collectives_.rank == 0) {
    s.tensors["parameters"] = parameters_.flatten();
    s.tensors["first_moment"] = first_moment_;
    s.tensors["second_moment"] = second_moment_;
  }
  return s;
}

void AdamWLearner::restore(const LearnerState& s) {
  const std::int64_t step = state_counter(s, "step");
  const Eigen::Index p = parameters_.size();
  const Eigen::MatrixXd& theta = state_tensor(s, "parameters", p, 1);
  const Eigen::MatrixXd& m = state_tensor(s, "first_moment", p, 1);
  const Eigen::MatrixXd& v = state_tensor(s, "second_moment", p, 1);
  parameters_.unflatten(theta.col(0));
  first_moment_ = m.col(0);
  second_moment_ = v.col(0);
  steps_ = step;
  learning_rate_ = steps_ > 0 ? config_.schedule.at(steps_) : 0.0;
}

std::unique_ptr<LanguageLearner> make_adamw_learner(const YAML::Node& learner,
                                                    const GptConfig& model, std::uint64_t seed,
                                                    LmCollectives collectives) {
  return std::make_unique<AdamWLearner>(parse_adamw_config(learner), model, seed,
                                        std::move(collectives));
}

}  // namespace kwm::lm
