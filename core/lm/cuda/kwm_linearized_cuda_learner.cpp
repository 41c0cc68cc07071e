// KwmLinearizedCudaLearner: the device step, lazy host copies and CPU-compatible checkpoints.
#include "core/lm/cuda/kwm_linearized_cuda_learner.hpp"

#include <limits>
#include <stdexcept>

#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/learner_state_keys.hpp"
#include "core/lm/learners/rank_collectives.hpp"

namespace kwm::lm::cuda {
namespace {

GptParameters<double> untied_start(const GptConfig& model, std::uint64_t seed) {
  if (!device_available())
    throw std::runtime_error("learner.device: cuda: no CUDA device is visible");
  GptConfig untied = model;
  untied.tied_head = false;  // as KwmLinearizedLearner
  return GptParameters<double>::init(untied, seed);
}

}  // namespace

KwmLinearizedCudaLearner::KwmLinearizedCudaLearner(const KwmLinearizedConfig& config,
                                                   const GptConfig& model, std::uint64_t seed,
                                                   const LmCollectives& collectives,
                                                   TensorMath math, TensorMath statistics_math)
    : math_(math),
      statistics_math_(statistics_math),
      rank_(collectives.rank),
      host_(untied_start(model, seed)) {
  device_ = std::make_unique<KwmLinearizedCuda>(config, host_.last_synced(), collectives);
  device_->set_tensor_math(math);
  device_->set_statistics_math(statistics_math);
  // The device holds fp32; the host copy shows what the device holds from the start.
  host_.set(device_->parameters());
  energy_ = Eigen::VectorXd::Constant(static_cast<Eigen::Index>(device_->block_names().size()),
                                      std::numeric_limits<double>::quiet_NaN());
}

StepReport KwmLinearizedCudaLearner::step(const TokenBatch& batch) {
  validate_batch(host_.last_synced().config, batch);
  host_.mark_stale();
  return device_->step(batch);
}

const GptParameters<double>& KwmLinearizedCudaLearner::parameters() const {
  return host_.get([this](GptParameters<double>& host) { host = device_->parameters(); });
}

LearnerState KwmLinearizedCudaLearner::state() const {
  LearnerState s;
  if (rank_ == 0) {  // replicated values: one copy, as the CPU learner writes them
    s.tensors["parameters"] = parameters().flatten();
    s.tensors["noise_energy"] = energy_;
  }
  const std::vector<std::string>& names = device_->block_names();
  for (std::size_t b = 0; b < names.size(); ++b)
    if (device_->owns(b)) s.tensors[names[b] + ".information"] = device_->information(b);
  s.counters["steps"] = device_->steps();
  s.counters["skips"] = device_->skips();
  s.counters["block_skips"] = device_->block_skips();
  s.counters["jitter_retries"] = device_->jitter_retries();
  return s;
}

void KwmLinearizedCudaLearner::restore(const LearnerState& s) {
  const std::vector<std::string>& names = device_->block_names();
  const GptConfig& config = host_.last_synced().config;
  const auto n = static_cast<Eigen::Index>(host_.last_synced().size());
  const Eigen::MatrixXd& flat = state_tensor(s, "parameters", n, 1);
  const Eigen::MatrixXd& energy =
      state_tensor(s, "noise_energy", static_cast<Eigen::Index>(names.size()), 1);
  std::vector<const Eigen::MatrixXd*> information(names.size(), nullptr);
  for (std::size_t b = 0; b < names.size(); ++b) {
    if (!device_->owns(b)) continue;
    const auto [rows, cols] = device_->information_shape(b);
    information[b] = &state_tensor(s, names[b] + ".information", rows, cols);
  }
  const std::int64_t steps = state_counter(s, "steps");
  const std::int64_t skips = state_counter(s, "skips");
  const std::int64_t block_skips = state_counter(s, "block_skips");
  const std::int64_t retries = state_counter(s, "jitter_retries");
  // Everything checked: commit.
  GptParameters<double> restored = GptParameters<double>::zeros(config);
  restored.unflatten(flat.col(0));
  device_->set_parameters(restored);
  for (std::size_t b = 0; b < names.size(); ++b)
    if (information[b] != nullptr) device_->set_information(b, *information[b]);
  device_->set_counters(steps, skips, block_skips, retries);
  energy_ = energy.col(0);
  host_.mark_stale();  // re-read: the device rounded the values to fp32
}

void KwmLinearizedCudaLearner::shift_head_bias(const Eigen::VectorXd& delta) {
  GptParameters<double> shifted = parameters();
  add_to_head_bias(shifted, delta, name());
  device_->set_parameters(shifted);
  host_.mark_stale();
}

std::unique_ptr<LanguageLearner> make_kwm_linearized_cuda_learner(
    const YAML::Node& learner, const GptConfig& model, std::uint64_t seed,
    const LmCollectives& collectives, const DeviceAllReduceMaker& device_all_reduce) {
  const std::string type = learner && learner["type"] ? learner["type"].as<std::string>() : "";
  if (type != "kwm-linearized")
    throw std::invalid_argument(
        "learner.device: cuda implements learner.type kwm-linearized only; got '" + type + "'");
  // tensor_math and statistics_math are this device's keys, not the learner's: read them, then
  // parse the rest.
  YAML::Node keys = YAML::Clone(learner);  // a copy: the caller's section keeps both keys
  const auto device_key = [&](const char* key) {
    if (!learner[key]) return TensorMath::fp32;
    const TensorMath math =
        parse_tensor_math(learner[key].as<std::string>(), std::string("learner.") + key,
                          std::string(key) == "statistics_math");
    keys.remove(key);
    return math;
  };
  const TensorMath math = device_key("tensor_math");
  const TensorMath statistics_math = device_key("statistics_math");
  validate_collectives(collectives, "kwm-linearized on CUDA");  // before any device work
  auto made = std::make_unique<KwmLinearizedCudaLearner>(parse_kwm_linearized_config(keys), model,
                                                         seed, collectives, math, statistics_math);
  if (collectives.ranks > 1 && device_all_reduce) made->use_device_all_reduce(device_all_reduce);
  return made;
}

}  // namespace kwm::lm::cuda
