// RlsHeadCudaLearner: the device step, lazy head copies and CPU-compatible checkpoints.
#include "core/lm/cuda/rls_head_cuda_learner.hpp"

#include <stdexcept>

#include "core/lm/cuda/gpt_forward_cuda.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/augmented_linear.hpp"
#include "core/lm/learners/learner_state_keys.hpp"
#include "core/lm/learners/rank_collectives.hpp"

namespace kwm::lm::cuda {
namespace {

GptParameters<double> rls_head_untied_start(const GptConfig& model, std::uint64_t seed) {
  if (!device_available())
    throw std::runtime_error("learner.device: cuda: no CUDA device is visible");
  GptConfig untied = model;
  untied.tied_head = false;  // as RlsHeadLearner: the head is always untied
  return GptParameters<double>::init(untied, seed);
}

}  // namespace

RlsHeadCudaLearner::RlsHeadCudaLearner(const RlsHeadConfig& config, const GptConfig& model,
                                       std::uint64_t seed, const LmCollectives& collectives)
    : rank_(collectives.rank), host_(rls_head_untied_start(model, seed)) {
  device_ = std::make_unique<RlsHeadCuda>(config, host_.last_synced(), collectives);
  // The device holds fp32; the host copy shows what the device holds from the start.
  host_.set(device_->parameters());
}

StepReport RlsHeadCudaLearner::step(const TokenBatch& batch) {
  validate_batch(host_.last_synced().config, batch);
  host_.mark_stale();
  return device_->step(batch);
}

const GptParameters<double>& RlsHeadCudaLearner::parameters() const {
  // Only the head: the body never changes on the device.
  return host_.get(
      [this](GptParameters<double>& host) { set_augmented_weight(host.head, device_->head()); });
}

LearnerState RlsHeadCudaLearner::state() const {
  LearnerState s;
  if (rank_ == 0) {  // replicated values: one copy, as the CPU learner writes them
    s.tensors["parameters"] = parameters().flatten();
    s.tensors["head.mean_probability"] = device_->mean_probability();
  }
  if (device_->owns()) s.tensors["head.information"] = device_->information();
  s.counters["steps"] = device_->steps();
  s.counters["skips"] = device_->skips();
  s.counters["jitter_retries"] = device_->jitter_retries();
  return s;
}

void RlsHeadCudaLearner::restore(const LearnerState& s) {
  const GptConfig& config = host_.last_synced().config;
  const auto n = static_cast<Eigen::Index>(host_.last_synced().size());
  const Eigen::Index m = device_->inputs();
  const Eigen::Index vocab = config.vocab_size;
  const Eigen::MatrixXd& flat = state_tensor(s, "parameters", n, 1);
  const auto mean = s.tensors.find("head.mean_probability");
  if (mean == s.tensors.end())
    throw std::invalid_argument("learner state: tensor 'head.mean_probability' is missing");
  if (mean->second.size() != 0) state_tensor(s, "head.mean_probability", vocab, 1);
  const Eigen::MatrixXd* information =
      device_->owns() ? &state_tensor(s, "head.information", m, m) : nullptr;
  const std::int64_t steps = state_counter(s, "steps");
  const std::int64_t skips = state_counter(s, "skips");
  const std::int64_t retries = state_counter(s, "jitter_retries");
  // Everything checked: commit.
  GptParameters<double> restored = GptParameters<double>::zeros(config);
  restored.unflatten(flat.col(0));
  device_->set_parameters(restored);
  if (information != nullptr) device_->set_information(*information);
  device_->set_mean_probability(mean->second.size() == 0 ? Eigen::VectorXd()
                                                         : Eigen::VectorXd(mean->second.col(0)));
  device_->set_counters(steps, skips, retries);
  host_.set(device_->parameters());  // the device rounded the values to fp32
}

void RlsHeadCudaLearner::shift_head_bias(const Eigen::VectorXd& delta) {
  GptParameters<double> shifted = parameters();
  add_to_head_bias(shifted, delta, name());
  device_->set_parameters(shifted);
  host_.set(device_->parameters());
}

std::unique_ptr<LanguageLearner> make_rls_head_cuda_learner(
    const YAML::Node& learner, const GptConfig& model, std::uint64_t seed,
    const LmCollectives& collectives, const DeviceAllReduceMaker& device_all_reduce) {
  const std::string type = learner && learner["type"] ? learner["type"].as<std::string>() : "";
  if (type != "rls-head")
    throw std::invalid_argument("make_rls_head_cuda_learner: learner.type must be rls-head; got '" +
                                type + "'");
  const RlsHeadConfig config = parse_rls_head_config(learner);
  validate_collectives(collectives, "rls-head on CUDA");  // before any device work
  auto made = std::make_unique<RlsHeadCudaLearner>(config, model, seed, collectives);
  if (collectives.ranks > 1 && device_all_reduce) made->use_device_all_reduce(device_all_reduce);
  return made;
}

}  // namespace kwm::lm::cuda
