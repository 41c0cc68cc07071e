// kwm-linearized: transposed-Jacobian innovations, one information-form Kalman step per block.
#include "core/lm/learners/kwm_linearized_learner.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "core/lm/cross_entropy.hpp"
#include "core/lm/gpt_backward.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/block_placement.hpp"
#include "core/lm/learners/learner_options.hpp"
#include "core/lm/learners/learner_state_keys.hpp"
#include "core/lm/learners/rank_collectives.hpp"

namespace kwm::lm {

void KwmLinearizedConfig::validate() const {
  if (!(initial_variance > 0.0) || !std::isfinite(initial_variance))
    fail_option("learner.initial_variance", "must be finite and > 0");
  if (!(forgetting > 0.0 && forgetting <= 1.0))
    fail_option("learner.forgetting", "must be in (0, 1]; got " + std::to_string(forgetting));
  if (!(noise_variance > 0.0) || !std::isfinite(noise_variance))
    fail_option("learner.noise.variance", "must be finite and > 0");
  if (!(noise_ema >= 0.0 && noise_ema < 1.0))
    fail_option("learner.noise.ema", "must be in [0, 1); got " + std::to_string(noise_ema));
  if (!(noise_floor > 0.0) || !std::isfinite(noise_floor))
    fail_option("learner.noise.floor", "must be finite and > 0");
}

KwmLinearizedConfig parse_kwm_linearized_config(const YAML::Node& learner) {
  const std::string p = "learner";
  check_option_keys(learner, p,
                    {"type", "initial_variance", "forgetting", "noise", "update_embeddings",
                     "update_layer_norms", "jitter"});
  KwmLinearizedConfig c;
  c.initial_variance = read_option(learner, "initial_variance", p, c.initial_variance);
  c.forgetting = read_option(learner, "forgetting", p, c.forgetting);
  c.update_embeddings = read_option(learner, "update_embeddings", p, c.update_embeddings);
  c.update_layer_norms = read_option(learner, "update_layer_norms", p, c.update_layer_norms);
  const YAML::Node noise = learner ? learner["noise"] : YAML::Node();
  const std::string n = p + ".noise";
  check_option_keys(noise, n, {"mode", "variance", "ema", "floor"});
  const auto mode = read_option<std::string>(noise, "mode", n, "fixed");
  if (mode == "fixed") {
    c.noise_mode = LinearizedNoise::fixed;
  } else if (mode == "adaptive") {
    c.noise_mode = LinearizedNoise::adaptive;
  } else {
    fail_option(n + ".mode", "must be one of fixed, adaptive; got '" + mode + "'");
  }
  c.noise_variance = read_option(noise, "variance", n, c.noise_variance);
  c.noise_ema = read_option(noise, "ema", n, c.noise_ema);
  c.noise_floor = read_option(noise, "floor", n, c.noise_floor);
  c.jitter = read_jitter_option(learner, p);
  c.validate();
  return c;
}

YAML::Node to_yaml(const KwmLinearizedConfig& c) {
  YAML::Node y;
  y["type"] = "kwm-linearized";
  y["initial_variance"] = c.initial_variance;
  y["forgetting"] = c.forgetting;
  y["noise"]["mode"] = c.noise_mode == LinearizedNoise::fixed ? "fixed" : "adaptive";
  y["noise"]["variance"] = c.noise_variance;
  y["noise"]["ema"] = c.noise_ema;
  y["noise"]["floor"] = c.noise_floor;
  y["update_embeddings"] = c.update_embeddings;
  y["update_layer_norms"] = c.update_layer_norms;
  y["jitter"] = jitter_to_yaml(c.jitter);
  return y;
}

namespace {

GptConfig untied(GptConfig model) {
  model.tied_head = false;
  return model;
}

bool is_embedding(const std::string& name) {
  return name == "token_embedding" || name == "position_embedding";
}

bool is_layer_norm(const std::string& name) {
  return name == "ln_f" || name.ends_with(".ln1") || name.ends_with(".ln2");
}

}  // namespace

KwmLinearizedLearner::KwmLinearizedLearner(const KwmLinearizedConfig& config,
                                           const GptConfig& model, std::uint64_t seed,
                                           LmCollectives collectives)
    : config_(config),
      collectives_(std::move(collectives)),
      parameters_(GptParameters<double>::init(untied(model), seed)),
      blocks_(make_linearized_blocks(parameters_)) {
  config_.validate();
  validate_collectives(collectives_, "kwm-linearized");
  std::vector<double> costs;
  for (const auto& block : blocks_) {
    names_.push_back(block->name());
    costs.push_back(block->cost());
  }
  owners_ = place_blocks_lpt(costs, collectives_.ranks);
  for (std::size_t b = 0; b < blocks_.size(); ++b)
    if (owners_[b] == collectives_.rank)
      blocks_[b]->reset_information(1.0 / config_.initial_variance);
  energy_.assign(blocks_.size(), std::numeric_limits<double>::quiet_NaN());
  noise_.assign(blocks_.size(), config_.noise_variance);
}

bool KwmLinearizedLearner::active(std::size_t block) const {
  if (is_embedding(names_[block])) return config_.update_embeddings;
  if (is_layer_norm(names_[block])) return config_.update_layer_norms;
  return true;
}

StepReport KwmLinearizedLearner::step(const TokenBatch& batch) {
  validate_batch(parameters_.config, batch);
  StepReport report;
  report.tokens = batch.tokens();
  report.forward_passes = 1;
  ForwardCache<double> cache;
  const Matrix<double> logits = forward(parameters_, batch, &cache);
  const bool nonfinite_logits = !logits.allFinite();
  if (any_rank(collectives_, nonfinite_logits)) {
    report.nll_before = std::numeric_limits<double>::quiet_NaN();
    report.skipped = true;
    ++skips_;
    return report;
  }
  const CrossEntropy<double> loss = cross_entropy(logits, batch.targets);
  report.nll_before = loss.mean_nll;
  const TransposedJacobian<double> innovations =
      transpose_jacobian(parameters_, cache, output_innovation(loss, batch.targets));
  report.transposed_jacobian_passes = 1;

  // Every active block's raw statistics and the token count in one buffer, one all-reduce.
  std::vector<std::size_t> offset(blocks_.size() + 1, 0);
  for (std::size_t b = 0; b < blocks_.size(); ++b)
    offset[b + 1] = offset[b] + (active(b) ? blocks_[b]->statistics_size() : 0);
  std::vector<double> buffer(offset.back() + 1, 0.0);
  const StepView view{&cache, &innovations};
  for (std::size_t b = 0; b < blocks_.size(); ++b)
    if (active(b)) blocks_[b]->accumulate(view, buffer.data() + offset[b]);
  buffer.back() = static_cast<double>(batch.tokens());
  sum_over_ranks(collectives_, buffer.data(), buffer.size());
  const bool nonfinite =
      !Eigen::Map<const Eigen::VectorXd>(buffer.data(), static_cast<Eigen::Index>(buffer.size()))
           .allFinite();
  if (any_rank(collectives_, nonfinite)) {
    report.skipped = true;
    ++skips_;
    return report;
  }
  const double tokens = buffer.back();

  // Observation noise per block (replicated: computed from all-reduced energies).
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    if (!active(b) || config_.noise_mode == LinearizedNoise::fixed) continue;
    const double energy = blocks_[b]->innovation_energy(buffer.data() + offset[b], tokens);
    energy_[b] = std::isnan(energy_[b])
                     ? energy
                     : config_.noise_ema * energy_[b] + (1.0 - config_.noise_ema) * energy;
    noise_[b] = std::max(config_.noise_floor, energy_[b]);
  }

  // Owners solve; failures and jitter retries are summed so every rank counts the same.
  const BlockSettings settings{config_.forgetting, 1.0 / config_.initial_variance, config_.jitter};
  std::vector<double> outcome(2 * blocks_.size(), 0.0);
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    if (!active(b) || owners_[b] != collectives_.rank) continue;
    const SharedRowOutcome result =
        blocks_[b]->update(buffer.data() + offset[b], noise_[b], settings);
    outcome[2 * b] = result.applied ? 0.0 : 1.0;
    outcome[2 * b + 1] = static_cast<double>(result.jitter_retries);
  }
  sum_over_ranks(collectives_, outcome.data(), outcome.size());
  std::vector<double> mean;
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    if (!active(b)) continue;
    jitter_retries_ += static_cast<std::int64_t>(outcome[2 * b + 1]);
    if (outcome[2 * b] > 0.0) {  // the owner refused this block: nobody changes it
      ++block_skips_;
      continue;
    }
    if (collectives_.single_process()) continue;
    mean.assign(blocks_[b]->mean_size(), 0.0);
    if (owners_[b] == collectives_.rank) blocks_[b]->pack_mean(mean.data());
    broadcast_from(collectives_, mean.data(), mean.size(), owners_[b]);
    if (owners_[b] != collectives_.rank) blocks_[b]->unpack_mean(mean.data());
  }
  ++steps_;
  return report;
}

LearnerState KwmLinearizedLearner::state() const {
  LearnerState s;
  if (collectives_.rank == 0) {
    s.tensors["parameters"] = parameters_.flatten();
    s.tensors["noise_energy"] = Eigen::Map<const Eigen::VectorXd>(
        energy_.data(), static_cast<Eigen::Index>(energy_.size()));
  }
  for (std::size_t b = 0; b < blocks_.size(); ++b)
    if (owners_[b] == collectives_.rank)
      s.tensors[names_[b] + ".information"] = blocks_[b]->information();
  s.counters["steps"] = steps_;
  s.counters["skips"] = skips_;
  s.counters["block_skips"] = block_skips_;
  s.counters["jitter_retries"] = jitter_retries_;
  return s;
}

void KwmLinearizedLearner::restore(const LearnerState& s) {
  const auto n = static_cast<Eigen::Index>(parameters_.size());
  const auto count = static_cast<Eigen::Index>(blocks_.size());
  const Eigen::MatrixXd& flat = state_tensor(s, "parameters", n, 1);
  const Eigen::MatrixXd& energy = state_tensor(s, "noise_energy", count, 1);
  std::vector<const Eigen::MatrixXd*> information(blocks_.size(), nullptr);
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    if (owners_[b] != collectives_.rank) continue;
    const Eigen::MatrixXd& expected = blocks_[b]->information();
    information[b] = &state_tensor(s, names_[b] + ".information", expected.rows(), expected.cols());
  }
  const std::int64_t steps = state_counter(s, "steps");
  const std::int64_t skips = state_counter(s, "skips");
  const std::int64_t block_skips = state_counter(s, "block_skips");
  const std::int64_t retries = state_counter(s, "jitter_retries");
  // Everything checked: now commit (blocks point into parameters_, which keeps its storage
  // shapes, so unflatten leaves them valid).
  parameters_.unflatten(flat.col(0));
  for (std::size_t b = 0; b < blocks_.size(); ++b)
    if (information[b] != nullptr) blocks_[b]->set_information(*information[b]);
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    energy_[b] = energy(static_cast<Eigen::Index>(b), 0);
    noise_[b] = std::isnan(energy_[b]) || config_.noise_mode == LinearizedNoise::fixed
                    ? config_.noise_variance
                    : std::max(config_.noise_floor, energy_[b]);
  }
  steps_ = steps;
  skips_ = skips;
  block_skips_ = block_skips;
  jitter_retries_ = retries;
}

std::unique_ptr<LanguageLearner> make_kwm_linearized_learner(const YAML::Node& learner,
                                                             const GptConfig& model,
                                                             std::uint64_t seed,
                                                             LmCollectives collectives) {
  return std::make_unique<KwmLinearizedLearner>(parse_kwm_linearized_config(learner), model, seed,
                                                std::move(collectives));
}

}  // namespace kwm::lm
