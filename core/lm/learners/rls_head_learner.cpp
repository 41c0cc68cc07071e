// rls-head: the Kronecker/shared-row Kalman head on a fixed random-feature body.
#include "core/lm/learners/rls_head_learner.hpp"

#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/lm/cross_entropy.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/augmented_linear.hpp"
#include "core/lm/learners/block_placement.hpp"
#include "core/lm/learners/learner_options.hpp"
#include "core/lm/learners/learner_state_keys.hpp"
#include "core/lm/learners/mean_field_softmax.hpp"
#include "core/lm/learners/rank_collectives.hpp"
#include "core/lm/learners/shared_row_information.hpp"

namespace kwm::lm {

void RlsHeadConfig::validate() const {
  if (!(initial_variance > 0.0) || !std::isfinite(initial_variance))
    fail_option("learner.initial_variance", "must be finite and > 0");
  if (!(forgetting > 0.0 && forgetting <= 1.0))
    fail_option("learner.forgetting", "must be in (0, 1]; got " + std::to_string(forgetting));
  if (!(delta > 0.0) || !std::isfinite(delta))
    fail_option("learner.delta", "must be finite and > 0; got " + std::to_string(delta));
  if (!(probability_ema >= 0.0 && probability_ema < 1.0))
    fail_option("learner.probability_ema",
                "must be in [0, 1); got " + std::to_string(probability_ema));
}

RlsHeadConfig parse_rls_head_config(const YAML::Node& learner) {
  const std::string p = "learner";
  check_option_keys(
      learner, p, {"type", "initial_variance", "forgetting", "delta", "probability_ema", "jitter"});
  RlsHeadConfig c;
  c.initial_variance = read_option(learner, "initial_variance", p, c.initial_variance);
  c.forgetting = read_option(learner, "forgetting", p, c.forgetting);
  c.delta = read_option(learner, "delta", p, c.delta);
  c.probability_ema = read_option(learner, "probability_ema", p, c.probability_ema);
  c.jitter = read_jitter_option(learner, p);
  c.validate();
  return c;
}

YAML::Node to_yaml(const RlsHeadConfig& c) {
  YAML::Node n;
  n["type"] = "rls-head";
  n["initial_variance"] = c.initial_variance;
  n["forgetting"] = c.forgetting;
  n["delta"] = c.delta;
  n["probability_ema"] = c.probability_ema;
  n["jitter"] = jitter_to_yaml(c.jitter);
  return n;
}

namespace {

GptConfig untied(GptConfig model) {
  model.tied_head = false;
  return model;
}

}  // namespace

RlsHeadLearner::RlsHeadLearner(const RlsHeadConfig& config, const GptConfig& model,
                               std::uint64_t seed, LmCollectives collectives)
    : config_(config),
      collectives_(std::move(collectives)),
      parameters_(GptParameters<double>::init(untied(model), seed)) {
  config_.validate();
  validate_collectives(collectives_, "rls-head");
  const Eigen::Index d = augmented_inputs(parameters_.head);
  owner_ = place_blocks_lpt({std::pow(static_cast<double>(d), 3.0)}, collectives_.ranks)[0];
  if (collectives_.rank == owner_)
    information_ = Eigen::MatrixXd::Identity(d, d) / config_.initial_variance;
}

StepReport RlsHeadLearner::step(const TokenBatch& batch) {
  validate_batch(parameters_.config, batch);
  StepReport report;
  report.tokens = batch.tokens();
  report.forward_passes = 1;
  ForwardCache<double> cache;
  const Matrix<double> logits = forward(parameters_, batch, &cache);
  const bool nonfinite = !logits.allFinite();
  if (any_rank(collectives_, nonfinite)) {
    report.nll_before = nonfinite ? std::nan("") : cross_entropy(logits, batch.targets).mean_nll;
    report.skipped = true;
    ++skips_;
    return report;
  }
  const CrossEntropy<double> loss = cross_entropy(logits, batch.targets);
  report.nll_before = loss.mean_nll;

  const bool bias = parameters_.head.bias.size() > 0;
  const Eigen::MatrixXd a =
      augmented_input(cache.linear[head_linear_index(parameters_.config)].input, bias);
  const Eigen::Index d = a.rows();
  const Eigen::Index vocab = logits.rows();
  // One buffer, one all-reduce: [packed sum a a^T | D (vocab x d) | sum p (vocab) | tokens].
  const std::size_t packed = packed_triangle_size(d);
  const auto cross_size = static_cast<std::size_t>(vocab * d);
  std::vector<double> buffer(packed + cross_size + static_cast<std::size_t>(vocab) + 1, 0.0);
  Eigen::MatrixXd second_moment = Eigen::MatrixXd::Zero(d, d);
  second_moment.selfadjointView<Eigen::Lower>().rankUpdate(a);
  second_moment = second_moment.selfadjointView<Eigen::Lower>();
  pack_upper_triangle(second_moment, buffer.data());
  Eigen::Map<Eigen::MatrixXd>(buffer.data() + packed, vocab, d).noalias() =
      output_innovation(loss, batch.targets) * a.transpose();
  Eigen::Map<Eigen::VectorXd>(buffer.data() + packed + cross_size, vocab) =
      loss.probabilities.rowwise().sum();
  buffer.back() = static_cast<double>(batch.tokens());
  sum_over_ranks(collectives_, buffer.data(), buffer.size());

  const double tokens = buffer.back();
  const Eigen::VectorXd batch_mean =
      Eigen::Map<const Eigen::VectorXd>(buffer.data() + packed + cross_size, vocab) / tokens;
  const Eigen::VectorXd previous_mean = mean_probability_;
  mean_probability_ = mean_probability_.size() == 0
                          ? batch_mean
                          : Eigen::VectorXd(config_.probability_ema * mean_probability_ +
                                            (1.0 - config_.probability_ema) * batch_mean);

  bool failed = false;
  Eigen::MatrixXd head = augmented_weight(parameters_.head);
  if (collectives_.rank == owner_) {
    const Eigen::MatrixXd cross = mean_field_softmax_solve(
        mean_probability_, config_.delta,
        Eigen::Map<const Eigen::MatrixXd>(buffer.data() + packed, vocab, d));
    const SharedRowOutcome outcome = shared_row_information_update(
        head, information_, unpack_symmetric(buffer.data(), d), cross, config_.forgetting,
        1.0 / config_.initial_variance, config_.jitter);
    jitter_retries_ += outcome.jitter_retries;
    failed = !outcome.applied;
  }
  if (any_rank(collectives_, failed)) {
    mean_probability_ = previous_mean;  // the step is refused as a whole
    report.skipped = true;
    ++skips_;
    return report;
  }
  broadcast_from(collectives_, head.data(), static_cast<std::size_t>(head.size()), owner_);
  set_augmented_weight(parameters_.head, head);
  ++steps_;
  return report;
}

LearnerState RlsHeadLearner::state() const {
  LearnerState s;
  if (collectives_.rank == 0) {
    s.tensors["parameters"] = parameters_.flatten();
    s.tensors["head.mean_probability"] = mean_probability_;
  }
  if (collectives_.rank == owner_) s.tensors["head.information"] = information_;
  s.counters["steps"] = steps_;
  s.counters["skips"] = skips_;
  s.counters["jitter_retries"] = jitter_retries_;
  return s;
}

void RlsHeadLearner::restore(const LearnerState& s) {
  const auto n = static_cast<Eigen::Index>(parameters_.size());
  const Eigen::Index d = augmented_inputs(parameters_.head);
  const Eigen::Index vocab = parameters_.config.vocab_size;
  const Eigen::MatrixXd& flat = state_tensor(s, "parameters", n, 1);
  const auto mean = s.tensors.find("head.mean_probability");
  if (mean == s.tensors.end())
    throw std::invalid_argument("learner state: tensor 'head.mean_probability' is missing");
  if (mean->second.size() != 0) state_tensor(s, "head.mean_probability", vocab, 1);
  Eigen::MatrixXd information;
  if (collectives_.rank == owner_) information = state_tensor(s, "head.information", d, d);
  const std::int64_t steps = state_counter(s, "steps");
  const std::int64_t skips = state_counter(s, "skips");
  const std::int64_t retries = state_counter(s, "jitter_retries");
  // Everything checked: now commit.
  parameters_.unflatten(flat.col(0));
  mean_probability_ = mean->second.size() == 0 ? Eigen::VectorXd() : Eigen::VectorXd(mean->second);
  information_ = std::move(information);
  steps_ = steps;
  skips_ = skips;
  jitter_retries_ = retries;
}

std::unique_ptr<LanguageLearner> make_rls_head_learner(const YAML::Node& learner,
                                                       const GptConfig& model, std::uint64_t seed,
                                                       LmCollectives collectives) {
  return std::make_unique<RlsHeadLearner>(parse_rls_head_config(learner), model, seed,
                                          std::move(collectives));
}

}  // namespace kwm::lm
