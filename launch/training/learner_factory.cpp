// learner.type -> SequenceLearner. Kalman learners and Adam wrap a SequenceModel; AR/VAR and
// persistence need none.
#include "launch/training/learner_factory.hpp"

#include <spdlog/spdlog.h>

#include <set>

#include "core/learners/baselines/adam_sensitivity.hpp"
#include "core/learners/baselines/autoregressive.hpp"
#include "core/learners/baselines/persistence.hpp"
#include "core/learners/kalman/kalman_sequence_learner.hpp"
#include "core/models/model_io.hpp"
#include "launch/user_error.hpp"

namespace kwm::launch {
namespace {

void check_keys(const YAML::Node& node, const std::set<std::string>& allowed) {
  for (const auto& entry : node) {
    const auto key = entry.first.as<std::string>();
    if (!allowed.contains(key)) {
      std::string known;
      for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
      throw UserError("unknown key 'learner." + key + "' for learner.type '" +
                      node["type"].as<std::string>() + "'; expected one of: " + known);
    }
  }
}

template <typename V>
V get(const YAML::Node& node, const std::string& key, V fallback) {
  if (!node[key]) return fallback;
  try {
    return node[key].as<V>();
  } catch (const YAML::Exception&) {
    throw UserError("key 'learner." + key + "' has the wrong type; got '" + YAML::Dump(node[key]) +
                    "'");
  }
}

std::unique_ptr<SequenceModel> build_model(const RunConfig& config, const Series& series,
                                           const eval::TimeSplit& split, YAML::Node& resolved) {
  YAML::Node model_node = YAML::Clone(config.model);
  if (!model_node || !model_node.IsMap()) throw UserError("section 'model' must be a mapping");
  model_node["n_in"] = series.inputs.cols();
  model_node["n_out"] = series.outputs.cols();
  std::unique_ptr<SequenceModel> model;
  try {
    model = make_model(model_node);
  } catch (const std::invalid_argument& e) {
    throw UserError(std::string("model: ") + e.what());
  }
  const auto rows = Eigen::seqN(split.train.begin, split.train.size());
  model->set_normalization(
      Normalization::fit(series.inputs(rows, Eigen::all), series.outputs(rows, Eigen::all)));
  resolved = model_config(*model);
  return model;
}

}  // namespace

BuiltLearner build_learner(const RunConfig& config, const Series& series,
                           const eval::TimeSplit& split, const LearnerSharding& sharding) {
  BuiltLearner built;
  const std::string& type = config.learner_type;
  const YAML::Node& node = config.learner;
  // run_config.cpp admits distributed.mode data_parallel for ar and var only.
  const bool data_parallel = config.distributed.mode == "data_parallel";
  if (!sharding.single_process() && !data_parallel && !is_kalman_learner(type))
    throw UserError("learner.type '" + type + "' runs on one rank only in distributed.mode '" +
                    config.distributed.mode + "'; " + std::to_string(sharding.ranks) +
                    " ranks were started (the Kalman learners shard over ranks; ar and var "
                    "take distributed.mode: data_parallel)");
  try {
    if (is_kalman_learner(type)) {
      const KalmanLearnerConfig kc = kalman_learner_config(node);
      auto model = build_model(config, series, split, built.resolved_model);
      built.parameters = model->parameter_count();
      built.learner = std::make_unique<KalmanSequenceLearner>(std::move(model), kc, sharding);
      built.resolved_learner = to_yaml(kc);
    } else if (type == "adam-sensitivity") {
      check_keys(node, {"type", "learning_rate", "beta1", "beta2", "epsilon", "weight_decay",
                        "gradient_clip", "noise_ema", "initial_noise", "noise_floor"});
      AdamSensitivityConfig ac;
      ac.learning_rate = get(node, "learning_rate", ac.learning_rate);
      ac.beta1 = get(node, "beta1", ac.beta1);
      ac.beta2 = get(node, "beta2", ac.beta2);
      ac.epsilon = get(node, "epsilon", ac.epsilon);
      ac.weight_decay = get(node, "weight_decay", ac.weight_decay);
      ac.gradient_clip = get(node, "gradient_clip", ac.gradient_clip);
      ac.noise_ema = get(node, "noise_ema", ac.noise_ema);
      ac.initial_noise = get(node, "initial_noise", ac.initial_noise);
      ac.noise_floor = get(node, "noise_floor", ac.noise_floor);
      auto model = build_model(config, series, split, built.resolved_model);
      built.parameters = model->parameter_count();
      built.learner = std::make_unique<AdamSensitivityLearner>(std::move(model), ac);
      built.resolved_learner = YAML::Clone(node);
    } else if (type == "ar" || type == "var") {
      check_keys(node, {"type", "order", "use_inputs", "ridge"});
      AutoRegressiveConfig ar;
      ar.order = get<Eigen::Index>(node, "order", 2);
      ar.cross_channel = type == "var";
      ar.use_inputs = get(node, "use_inputs", false);
      ar.ridge = get(node, "ridge", ar.ridge);
      auto learner =
          std::make_unique<AutoRegressiveLearner>(series.inputs.cols(), series.outputs.cols(), ar);
      // Data-parallel: each rank accumulates the normal equations over its share of the
      // training rows; `sum` joins them (single process: the whole fit).
      RowShare share;
      if (data_parallel && !sharding.single_process()) {
        share = RowShare{sharding.rank, sharding.ranks, sharding.sum};
        spdlog::info(
            "distributed: mode data_parallel, {} ranks: each accumulates X^T X, X^T y and the "
            "residuals over its 1/{} of the training rows; one all-reduce joins them",
            sharding.ranks, sharding.ranks);
      }
      learner->fit(series.inputs, series.outputs, split.train, share);
      built.learner = std::move(learner);
      built.resolved_learner = YAML::Clone(node);
      built.single_pass = false;
    } else if (type == "persistence") {
      check_keys(node, {"type"});
      built.learner = std::make_unique<PersistenceLearner>(series.outputs.cols());
      built.resolved_learner = YAML::Clone(node);
    } else {
      throw UserError(
          "key 'learner.type' must be one of sensitivity-dekf, dense-ekf, "
          "diagonal-ekf, adam-sensitivity, ar, var, persistence; got '" +
          type + "'");
    }
  } catch (const std::invalid_argument& e) {
    throw UserError(e.what());
  }
  return built;
}

const SequenceModel* model_of(const SequenceLearner& learner) {
  if (const auto* k = dynamic_cast<const KalmanSequenceLearner*>(&learner)) return &k->model();
  if (const auto* a = dynamic_cast<const AdamSensitivityLearner*>(&learner)) return &a->model();
  return nullptr;
}

}  // namespace kwm::launch
