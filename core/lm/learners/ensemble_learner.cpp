// kwm-ensemble: forecast, sharded forward passes, ensemble-space analysis.
#include "core/lm/learners/ensemble_learner.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/lm/cross_entropy.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/ensemble_batch.hpp"
#include "core/lm/learners/ensemble_draws.hpp"
#include "core/lm/learners/learner_state_keys.hpp"
#include "core/lm/learners/rank_collectives.hpp"

namespace kwm::lm {
namespace {

// One number per token from a max-shifted log-softmax of the logits: the target's probability,
// or the residual sqrt(2 NLL_n).
Eigen::VectorXd token_observables(const Matrix<double>& logits,
                                  const std::vector<std::int32_t>& targets,
                                  EnsembleObservation kind) {
  Eigen::VectorXd out(logits.cols());
  for (Eigen::Index n = 0; n < logits.cols(); ++n) {
    const double top = logits.col(n).maxCoeff();
    const double log_sum = top + std::log((logits.col(n).array() - top).exp().sum());
    const double nll = std::max(log_sum - logits(targets[static_cast<std::size_t>(n)], n), 0.0);
    out(n) =
        kind == EnsembleObservation::target_probability ? std::exp(-nll) : std::sqrt(2.0 * nll);
  }
  return out;
}

std::string member_key(int j) { return "member." + std::to_string(j); }

// The head's input of a forward pass (the final layer norm's output, d x N).
const Matrix<double>& head_input(const ForwardCache<double>& cache) {
  return cache.linear.back().input;
}

}  // namespace

EnsembleLearner::EnsembleLearner(const EnsembleConfig& config, const GptConfig& model,
                                 std::uint64_t seed, LmCollectives collectives)
    : config_(config),
      seed_(seed),
      collectives_(std::move(collectives)),
      subspace_(config.subspace, GptParameters<double>::init(model, seed)) {
  config_.validate();
  validate_collectives(collectives_, "kwm-ensemble");
  const int j_total = config_.members, ranks = collectives_.ranks, rank = collectives_.rank;
  // Contiguous, balanced shares: rank r runs members [r J / R, (r+1) J / R).
  first_ = rank * j_total / ranks;
  last_ = (rank + 1) * j_total / ranks;
  members_ = initial_members(config_, seed_, subspace_.origin());
  mean_ = GptParameters<double>::zeros(model);
  scratch_ = GptParameters<double>::zeros(model);
  refresh_mean();
}

void EnsembleLearner::refresh_mean() { subspace_.embed(members_.rowwise().mean(), mean_); }

void EnsembleLearner::forecast() { forecast_members(members_, config_, seed_, steps_ + 1); }

StepReport EnsembleLearner::step(const TokenBatch& batch) {
  validate_batch(mean_.config, batch);
  StepReport report;
  report.tokens = batch.tokens();
  const GatheredBatch gathered = gather_batch(batch, collectives_);
  const TokenBatch& all = gathered.batch;
  const Eigen::Index m = all.tokens();
  // Body shared by every member (head-only subspaces): one pass of the mean (whose body is the
  // base) over the whole gathered batch serves every member, which then needs only ln_f and the
  // head, and its logits on this rank's columns give the prequential loss. Otherwise the mean
  // runs on this rank's share alone. Each member still counts as a pass.
  ForwardCache<double> body;
  const bool shared_body = subspace_.body_fixed() && m > 0 && first_ < last_;
  const auto prequential = [&](const Matrix<double>& logits) {
    report.nll_before = cross_entropy(logits, batch.targets).mean_nll;
    report.forward_passes = 1;
  };
  // With the head input fixed too (lora on the head without ln_f), every member's logits are the
  // shared W_0 h plus its rank-r correction and bias: no member's parameters are merged.
  const bool low_rank = shared_body && subspace_.head_input_fixed();
  Matrix<double> base_product;
  if (shared_body) {
    const Matrix<double> logits = forward(mean_, all, &body);
    if (batch.tokens() > 0) prequential(logits.middleCols(gathered.offset, batch.tokens()));
    if (low_rank) base_product = subspace_.base_head_product(head_input(body));
  } else if (batch.tokens() > 0) {
    prequential(forward(mean_, batch, nullptr));
  }
  const std::int64_t step = steps_ + 1;
  forecast();

  const int j_total = config_.members;
  Eigen::MatrixXd predictions = Eigen::MatrixXd::Zero(m, j_total);
  for (int j = first_; j < last_ && m > 0; ++j) {
    Matrix<double> logits;
    if (low_rank) {
      logits = subspace_.low_rank_head_logits(members_.col(j), head_input(body), base_product);
    } else {
      subspace_.embed(members_.col(j), scratch_);
      logits = shared_body ? head_logits(scratch_, body.ln_f.normalized)
                           : forward(scratch_, all, nullptr);
    }
    predictions.col(j) = token_observables(logits, all.targets, config_.observation);
    ++report.forward_passes;
  }
  sum_over_ranks(collectives_, predictions.data(), static_cast<std::size_t>(predictions.size()));

  const EnsembleObservations observed = ensemble_observations(predictions, config_, seed_, step);
  bool ok = m > 0 && observed.noise.allFinite();
  if (ok) {
    analysis_ = ensemble_analysis(predictions, observed.values, observed.noise);
    ok = analysis_.ok;
  }
  // Every rank holds the same numbers, so the flags agree; the vote keeps the collectives in step
  // should that ever not hold.
  const bool skip = any_rank(collectives_, !ok);
  if (!skip) {
    apply_ensemble_analysis(members_, analysis_.weights);
    refresh_mean();
  }
  report.skipped = skip;
  ++steps_;
  return report;
}

LearnerState EnsembleLearner::state() const {
  LearnerState s;
  s.counters["step"] = steps_;
  s.counters["members"] = config_.members;
  s.counters["dimension"] = subspace_.dimension();
  s.counters["seed"] = std::bit_cast<std::int64_t>(seed_);
  for (int j = first_; j < last_; ++j) s.tensors[member_key(j)] = members_.col(j);
  if (collectives_.rank == 0) s.tensors["base"] = subspace_.base();
  return s;
}

void EnsembleLearner::restore(const LearnerState& s) {
  const std::int64_t members = state_counter(s, "members");
  const std::int64_t dimension = state_counter(s, "dimension");
  if (members != config_.members || dimension != subspace_.dimension())
    throw std::invalid_argument("kwm-ensemble restore: state has " + std::to_string(members) +
                                " members of dimension " + std::to_string(dimension) +
                                "; this learner has " + std::to_string(config_.members) +
                                " of dimension " + std::to_string(subspace_.dimension()));
  const std::int64_t step = state_counter(s, "step");
  const std::int64_t seed = state_counter(s, "seed");
  const Eigen::MatrixXd& base = state_tensor(s, "base", subspace_.base().size(), 1);
  // Every rank keeps the whole ensemble: read every member, whoever wrote it.
  Eigen::MatrixXd restored(subspace_.dimension(), config_.members);
  for (int j = 0; j < config_.members; ++j)
    restored.col(j) = state_tensor(s, member_key(j), subspace_.dimension(), 1);
  subspace_.set_base(base.col(0));
  members_ = std::move(restored);
  steps_ = step;
  seed_ = std::bit_cast<std::uint64_t>(seed);
  refresh_mean();
}

void EnsembleLearner::shift_head_bias(const Eigen::VectorXd& delta) {
  GptParameters<double> shift = mean_.zeros_like();
  add_to_head_bias(shift, delta, name());
  subspace_.shift_base(shift.flatten(), members_);
  refresh_mean();
}

double process_noise_std(const EnsembleConfig& config, std::int64_t step) {
  if (config.process_noise_halflife <= 0.0) return config.process_noise;
  return config.process_noise /
         std::sqrt(1.0 + static_cast<double>(step) / config.process_noise_halflife);
}

std::unique_ptr<LanguageLearner> make_ensemble_learner(const YAML::Node& learner,
                                                       const GptConfig& model, std::uint64_t seed,
                                                       LmCollectives collectives) {
  return std::make_unique<EnsembleLearner>(parse_ensemble_config(learner), model, seed,
                                           std::move(collectives));
}

}  // namespace kwm::lm
