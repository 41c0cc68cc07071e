// MezoCudaLearner: two fp32 forward passes at theta(u +- eps z) on the device, three numbers summed
// over ranks, the fp64 step on the device, and CPU-compatible checkpoints.
#include "core/lm/cuda/mezo_cuda_learner.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/host_checks.hpp"
#include "core/lm/cuda/mezo_kernels.cuh"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/ensemble_random.hpp"
#include "core/lm/learners/rank_collectives.hpp"

namespace kwm::lm::cuda {
namespace {

// The checks before anything is allocated, then the CPU learner's theta_0.
GptParameters<double> mezo_start(const MezoConfig& config, const GptConfig& model,
                                 std::uint64_t seed, const LmCollectives& collectives) {
  config.validate();
  const SubspaceKind kind = config.subspace.kind;
  if (kind != SubspaceKind::all && kind != SubspaceKind::head && kind != SubspaceKind::last_blocks)
    throw std::invalid_argument(
        "learner.device: cuda runs mezo with subspace all, head or last_blocks (the coordinates "
        "are runs of the parameters); got " +
        describe(config.subspace));
  validate_collectives(collectives, "mezo");
  if (!device_available())
    throw std::runtime_error("learner.device: cuda: no CUDA device is visible");
  return GptParameters<double>::init(model, seed);
}

// Whether the flat shift `delta` moves a parameter outside the runs u holds.
bool moves_outside(const Eigen::VectorXd& delta,
                   const std::vector<std::pair<Eigen::Index, Eigen::Index>>& runs) {
  Eigen::VectorXd outside = delta;
  for (const auto& [offset, size] : runs) outside.segment(offset, size).setZero();
  return (outside.array() != 0.0).any();
}

}  // namespace

MezoCudaLearner::MezoCudaLearner(const MezoConfig& config, const GptConfig& model,
                                 std::uint64_t seed, LmCollectives collectives)
    : MezoCudaLearner(config, model, seed, collectives,
                      mezo_start(config, model, seed, collectives)) {}

MezoCudaLearner::MezoCudaLearner(const MezoConfig& config, const GptConfig& model,
                                 std::uint64_t seed, LmCollectives collectives,
                                 GptParameters<double> theta0)
    : config_(config),
      model_(model),
      seed_(seed),
      collectives_(std::move(collectives)),
      subspace_(config.subspace, theta0) {
  // theta(origin) is theta_0 itself for an index subspace, so the pass starts from it and only u
  // is copied after it (no second upload of the parameters).
  pass_ = std::make_unique<GptForwardCuda>(theta0.cast<float>());
  u_.reserve(as_size(subspace_.dimension()));
  upload_coordinates(subspace_.origin());
  host_.set(std::move(theta0));
}

std::uint64_t MezoCudaLearner::direction_stream(std::int64_t step) const {
  return stream_seed(seed_, RandomPurpose::mezo_direction, static_cast<std::uint64_t>(step), 0);
}

void MezoCudaLearner::upload_base() {
  // The copies below are not ordered after the pass's non-blocking stream: a step's update may
  // still be queued there (a restore right after a step), and must land first.
  KWM_CUDA_CHECK(cudaStreamSynchronize(pass_->stream()));
  GptParameters<double> base = GptParameters<double>::zeros(model_);
  base.unflatten(subspace_.base());
  pass_->parameters().upload(base.cast<float>());
  host_.mark_stale();
}

void MezoCudaLearner::upload_coordinates(const Eigen::VectorXd& u) {
  KWM_CUDA_CHECK(cudaStreamSynchronize(pass_->stream()));
  KWM_CUDA_CHECK(
      cudaMemcpy(u_.data(), u.data(), as_size(u.size()) * sizeof(double), cudaMemcpyHostToDevice));
  // A pageable cudaMemcpy may return before its DMA lands, and the pass's non-blocking stream is
  // not ordered after it: wait before the next kernel reads u.
  KWM_CUDA_CHECK(cudaDeviceSynchronize());
  host_.mark_stale();
}

void MezoCudaLearner::write_point(std::uint64_t stream, double scale) {
  float* theta = pass_->parameters().data();
  Eigen::Index at = 0;
  for (const auto& [offset, size] : subspace_.index_ranges()) {
    kernels::perturbed_range(u_.data(), at, size, stream, scale, theta + offset, pass_->stream());
    at += size;
  }
}

StepReport MezoCudaLearner::step(const TokenBatch& batch) {
  validate_batch(model_, batch);
  StepReport report;
  report.tokens = batch.tokens();
  const std::int64_t t = steps_ + 1;
  const std::uint64_t stream = direction_stream(t);
  const double eps = config_.epsilon;
  double sums[3] = {0.0, 0.0, static_cast<double>(batch.tokens())};  // L+ total, L- total, tokens
  if (batch.tokens() > 0) {
    // A head subspace moves only ln_f and the head, so the second point reuses the first one's
    // body (the residual stream the pass keeps) and runs ln_f and the head alone, with the same
    // result as a whole pass. Both still count as forward passes.
    write_point(stream, eps);
    sums[0] = pass_->total_nll(batch);
    write_point(stream, -eps);
    sums[1] = subspace_.body_fixed() ? pass_->head_total_nll() : pass_->total_nll(batch);
    report.nll_before = 0.5 * (sums[0] + sums[1]) / sums[2];
    report.forward_passes = 2;
  }
  sum_over_ranks(collectives_, sums, 3);
  const double tokens = sums[2];
  const double g = tokens > 0 ? (sums[0] - sums[1]) / tokens / (2.0 * eps) : 0.0;
  steps_ = t;  // the step seed advances even on a skip, as on the CPU
  const bool skip = any_rank(collectives_, !(tokens > 0) || !std::isfinite(g));
  report.skipped = skip;
  if (skip) return report;
  projected_gradient_ = g;
  const double lr = config_.schedule.at(t);
  const double decay = config_.weight_decay > 0.0 ? 1.0 - lr * config_.weight_decay : 1.0;
  kernels::mezo_update(u_.data(), subspace_.dimension(), stream, decay, lr * g, pass_->stream());
  host_.mark_stale();
  return report;
}

Eigen::VectorXd MezoCudaLearner::coordinates() const {
  Eigen::VectorXd u(subspace_.dimension());
  KWM_CUDA_CHECK(cudaStreamSynchronize(pass_->stream()));
  KWM_CUDA_CHECK(
      cudaMemcpy(u.data(), u_.data(), as_size(u.size()) * sizeof(double), cudaMemcpyDeviceToHost));
  return u;
}

Eigen::VectorXd MezoCudaLearner::device_direction(std::int64_t step) const {
  const Eigen::Index n = subspace_.dimension();
  DeviceBuffer<double> z(as_size(n));
  kernels::counter_normals(direction_stream(step), n, z.data(), pass_->stream());
  Eigen::VectorXd out(n);
  KWM_CUDA_CHECK(cudaStreamSynchronize(pass_->stream()));
  KWM_CUDA_CHECK(
      cudaMemcpy(out.data(), z.data(), as_size(n) * sizeof(double), cudaMemcpyDeviceToHost));
  return out;
}

const GptParameters<double>& MezoCudaLearner::parameters() const {
  return host_.get([this](GptParameters<double>& host) { subspace_.embed(coordinates(), host); });
}

LearnerState MezoCudaLearner::state() const {
  return write_mezo_state(steps_, seed_, coordinates(), subspace_.base(), collectives_.rank);
}

void MezoCudaLearner::restore(const LearnerState& s) {
  const MezoState r = read_mezo_state(s, subspace_.dimension(), subspace_.base().size());
  subspace_.set_base(r.base);
  steps_ = r.step;
  seed_ = r.seed;
  upload_base();
  upload_coordinates(r.coordinates);
}

void MezoCudaLearner::shift_head_bias(const Eigen::VectorXd& delta) {
  GptParameters<double> shift = GptParameters<double>::zeros(model_);
  add_to_head_bias(shift, delta, name());
  const Eigen::VectorXd flat = shift.flatten();
  Eigen::MatrixXd u = coordinates();
  subspace_.shift_base(flat, u);
  // The pass's parameters inside u's runs are rewritten by write_point before every forward pass,
  // so the base goes up again only when the shift reaches outside them (never for all, where u is
  // every parameter; head and last_blocks hold the head bias too).
  if (moves_outside(flat, subspace_.index_ranges())) upload_base();
  upload_coordinates(u.col(0));
}

std::unique_ptr<LanguageLearner> make_mezo_cuda_learner(const YAML::Node& learner,
                                                        const GptConfig& model, std::uint64_t seed,
                                                        const LmCollectives& collectives) {
  return std::make_unique<MezoCudaLearner>(parse_mezo_config(learner), model, seed, collectives);
}

}  // namespace kwm::lm::cuda
