// The kwm-ensemble step with its forward passes on the device: host forecast (the CPU learner's
// draws), one body pass, the members' heads in groups of strided-batched SGEMMs, the per-token
// observables, then the host analysis in fp64.
#include "core/lm/cuda/ensemble_cuda.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/ensemble_kernels.cuh"
#include "core/lm/cuda/host_checks.hpp"
#include "core/lm/cuda/tensor_math.hpp"
#include "core/lm/gpt_forward.hpp"
#include "core/lm/learners/ensemble_batch.hpp"
#include "core/lm/learners/ensemble_draws.hpp"
#include "core/lm/learners/ensemble_learner.hpp"
#include "core/lm/learners/rank_collectives.hpp"

namespace kwm::lm::cuda {
namespace {

// The refusal of everything but the shared-body subspaces, before anything is allocated.
void check_shared_body(const SubspaceConfig& subspace, const GptConfig& model) {
  const bool head_only =
      subspace.kind == SubspaceKind::head ||
      (subspace.kind == SubspaceKind::lora && subspace.blocks == 0 && subspace.layer_norms);
  if (!head_only || model.tied_head)
    throw std::invalid_argument(
        "learner.device: cuda runs kwm-ensemble with subspace head or {type: lora, blocks: 0} "
        "(with its layer norms) on an untied head only (the members share one body pass); got " +
        describe(subspace) + (model.tied_head ? " on a tied head" : ""));
}

GptParameters<double> unflattened(const GptConfig& model, const Eigen::VectorXd& flat) {
  GptParameters<double> p = GptParameters<double>::zeros(model);
  p.unflatten(flat);
  return p;
}

// The body the members share: the base, with the final layer norm made the identity so that the
// pass leaves xhat (every member applies its own gain and bias).
GptParameters<float> shared_body(const GptConfig& model, const Eigen::VectorXd& base) {
  GptParameters<double> p = unflattened(model, base);
  p.ln_f.gain.setOnes();
  p.ln_f.bias.setZero();
  return p.cast<float>();
}

GptParameters<double> ensemble_start(const EnsembleConfig& config, const GptConfig& model,
                                     std::uint64_t seed, const LmCollectives& collectives) {
  config.validate();
  check_shared_body(config.subspace, model);
  validate_collectives(collectives, "kwm-ensemble");
  if (!device_available())
    throw std::runtime_error("learner.device: cuda: no CUDA device is visible");
  return GptParameters<double>::init(model, seed);
}

}  // namespace

EnsembleHeadLayout ensemble_head_layout(const SubspaceConfig& config,
                                        const GptParameters<double>& base) {
  const GptConfig& model = base.config;
  check_shared_body(config, model);
  const Eigen::Index d = model.d_model, vocab = model.vocab_size;
  const bool bias = model.head_bias;
  EnsembleHeadLayout l;
  l.low_rank = config.kind == SubspaceKind::lora;
  l.gain_at = 0;
  l.bias_at = d;
  if (l.low_rank) {  // [ln_f.gain, ln_f.bias, head.bias | A (r x d), B (vocab x r)]
    l.rank = config.rank;
    l.head_bias_at = bias ? 2 * d : -1;
    l.weight_at = 2 * d + (bias ? vocab : 0);
    l.dimension = l.weight_at + l.rank * (d + vocab);
  } else {  // [ln_f.gain, ln_f.bias, head.weight, head.bias]: one range in flatten order
    l.weight_at = 2 * d;
    l.head_bias_at = bias ? 2 * d + vocab * d : -1;
    l.dimension = 2 * d + vocab * d + (bias ? vocab : 0);
  }
  // The probe: ParameterSubspace::embed of a point off the origin must put every entry where this
  // layout says (a guard against the subspace's order changing under this code).
  const ParameterSubspace subspace(config, base);
  bool agrees = subspace.body_fixed() && subspace.dimension() == l.dimension;
  if (agrees) {
    Eigen::VectorXd u = subspace.origin();
    for (Eigen::Index i = 0; i < u.size(); ++i) u(i) += 1e-3 * static_cast<double>(i % 7 - 3);
    GptParameters<double> p = GptParameters<double>::zeros(model);
    subspace.embed(u, p);
    agrees = p.ln_f.gain == u.segment(l.gain_at, d) && p.ln_f.bias == u.segment(l.bias_at, d) &&
             (!bias || p.head.bias == u.segment(l.head_bias_at, vocab));
    Eigen::MatrixXd weight;
    if (l.low_rank) {
      const Eigen::Map<const Eigen::MatrixXd> a(u.data() + l.weight_at, l.rank, d);
      const Eigen::Map<const Eigen::MatrixXd> b(u.data() + l.weight_at + l.rank * d, vocab, l.rank);
      weight = base.head.weight + b * a;
    } else {
      weight = Eigen::Map<const Eigen::MatrixXd>(u.data() + l.weight_at, vocab, d);
    }
    const double scale = std::max(weight.cwiseAbs().maxCoeff(), 1.0);
    agrees = agrees && (p.head.weight - weight).cwiseAbs().maxCoeff() <= 1e-12 * scale;
  }
  if (!agrees)
    throw std::logic_error("kwm-ensemble on CUDA: the head layout of subspace " + describe(config) +
                           " disagrees with ParameterSubspace");
  return l;
}

EnsembleCuda::EnsembleCuda(const EnsembleConfig& config, const GptConfig& model, std::uint64_t seed,
                           LmCollectives collectives, std::size_t workspace_bytes)
    : config_(config),
      model_(model),
      seed_(seed),
      collectives_(std::move(collectives)),
      subspace_(config.subspace, ensemble_start(config, model, seed, collectives_)),
      layout_(ensemble_head_layout(config.subspace, unflattened(model, subspace_.base()))),
      body_(shared_body(model, subspace_.base())),
      workspace_bytes_(std::max<std::size_t>(workspace_bytes, 1)) {
  const int j_total = config_.members, ranks = collectives_.ranks, rank = collectives_.rank;
  first_ = rank * j_total / ranks;  // as EnsembleLearner: contiguous, balanced shares
  last_ = (rank + 1) * j_total / ranks;
  members_ = initial_members(config_, seed_, subspace_.origin());
}

void EnsembleCuda::upload_base() {
  const GptParameters<float> body = shared_body(model_, subspace_.base());
  KWM_CUDA_CHECK(cudaDeviceSynchronize());  // no queued pass still reads the old values
  body_.parameters().upload(body);
}

void EnsembleCuda::forecast() { forecast_members(members_, config_, seed_, steps_ + 1); }

void EnsembleCuda::reserve(std::int64_t tokens, std::int64_t points) {
  const std::int64_t d = model_.d_model, vocab = model_.vocab_size;
  const std::int64_t per_point =
      (vocab * tokens + d * tokens + (layout_.low_rank ? vocab * d : 0)) *
      static_cast<std::int64_t>(sizeof(float));
  const auto budget = static_cast<std::int64_t>(workspace_bytes_);
  group_ = static_cast<int>(std::clamp<std::int64_t>(budget / std::max<std::int64_t>(per_point, 1),
                                                     1, std::max<std::int64_t>(points, 1)));
  const auto g = static_cast<std::int64_t>(group_);
  if (layout_.low_rank) weights_.reserve(as_size(vocab * d * g));
  normed_.reserve(as_size(d * tokens * g));
  logits_.reserve(as_size(vocab * tokens * g));
  points_.reserve(as_size(layout_.dimension * points));
  observables_.reserve(as_size(tokens * points));
}

Eigen::MatrixXd EnsembleCuda::predict(const TokenBatch& batch, const Eigen::MatrixXd& points,
                                      const Eigen::VectorXd& mean) {
  const Eigen::Index n = layout_.dimension;
  if (points.rows() != n || mean.size() != n)
    throw std::invalid_argument("kwm-ensemble on CUDA: points of dimension " +
                                std::to_string(points.rows()) + " and a mean of " +
                                std::to_string(mean.size()) + " for a subspace of dimension " +
                                std::to_string(n));
  const GptForwardCuda::DeviceForward pass = body_.device_forward(batch);  // validates the batch
  const std::int64_t tokens = batch.tokens(), d = model_.d_model, vocab = model_.vocab_size;
  const std::int64_t observed = points.cols(), count = observed + 1;  // the mean last
  reserve(tokens, count);
  const cudaStream_t stream = pass.stream;
  staged_points_.resize(as_size(n * count));
  Eigen::Map<Eigen::MatrixXf> staged(staged_points_.data(), n, count);
  staged.leftCols(observed) = points.cast<float>();
  staged.col(observed) = mean.cast<float>();
  KWM_CUDA_CHECK(cudaMemcpyAsync(points_.data(), staged_points_.data(),
                                 staged_points_.size() * sizeof(float), cudaMemcpyHostToDevice,
                                 stream));
  const kernels::TokenObservable kind =
      config_.observation == EnsembleObservation::target_probability
          ? kernels::TokenObservable::target_probability
          : kernels::TokenObservable::nll_residual;
  const float one = 1.0f, zero = 0.0f;
  for (std::int64_t first = 0; first < count; first += group_) {
    const std::int64_t group = std::min<std::int64_t>(group_, count - first);
    const float* at = points_.data() + first * n;
    kernels::member_layer_norm(pass.hidden, at, n, layout_.gain_at, layout_.bias_at, normed_.data(),
                               d, tokens, group, stream);
    const float* weights = at + layout_.weight_at;  // head: W in the coordinates
    std::int64_t weight_stride = n;
    if (layout_.low_rank) {
      kernels::merge_low_rank_heads(body_.parameters().head().weight, at, n, layout_.weight_at,
                                    layout_.rank, weights_.data(), vocab, d, group, stream);
      weights = weights_.data();
      weight_stride = vocab * d;
    }
    KWM_CUBLAS_CHECK(gemm_strided_batched(pass.blas, TensorMath::fp32, CUBLAS_OP_N, CUBLAS_OP_N,
                                          vocab, tokens, d, &one, weights, vocab, weight_stride,
                                          normed_.data(), d, d * tokens, &zero, logits_.data(),
                                          vocab, vocab * tokens, group));
    if (layout_.head_bias_at >= 0)
      kernels::add_member_bias(logits_.data(), at, n, layout_.head_bias_at, vocab, tokens, group,
                               stream);
    kernels::token_observables(logits_.data(), pass.targets, observables_.data() + first * tokens,
                               vocab, tokens, group, std::max<std::int64_t>(observed - first, 0),
                               kind, stream);
  }
  Eigen::MatrixXd out(tokens, count);
  KWM_CUDA_CHECK(cudaMemcpyAsync(out.data(), observables_.data(),
                                 as_size(tokens * count) * sizeof(double), cudaMemcpyDeviceToHost,
                                 stream));
  KWM_CUDA_CHECK(cudaStreamSynchronize(stream));
  return out;
}

StepReport EnsembleCuda::step(const TokenBatch& batch) {
  validate_batch(model_, batch);
  StepReport report;
  report.tokens = batch.tokens();
  const GatheredBatch gathered = gather_batch(batch, collectives_);
  const TokenBatch& all = gathered.batch;
  const Eigen::Index m = all.tokens();
  const std::int64_t offset = gathered.offset;  // this rank's first token in `all`
  // The CPU learner scores its mean before the forecast (theta(mean) of the current members).
  const Eigen::VectorXd mean = members_.rowwise().mean();
  const std::int64_t step = steps_ + 1;
  forecast();

  const int j_total = config_.members, local = last_ - first_;
  Eigen::MatrixXd predictions = Eigen::MatrixXd::Zero(m, j_total);
  const bool run_members = m > 0 && local > 0;
  if (run_members || batch.tokens() > 0) {
    const Eigen::MatrixXd out =
        predict(all, run_members ? members_.middleCols(first_, local) : members_.leftCols(0), mean);
    if (run_members) predictions.middleCols(first_, local) = out.leftCols(local);
    const Eigen::Index scored = run_members ? local : 0;
    if (batch.tokens() > 0) {
      report.nll_before = out.col(scored).segment(offset, batch.tokens()).sum() /
                          static_cast<double>(batch.tokens());
      report.forward_passes = 1;
    }
  }
  if (m > 0) report.forward_passes += local;
  sum_over_ranks(collectives_, predictions.data(), static_cast<std::size_t>(predictions.size()));

  // From here on the CPU learner's arithmetic, through the same functions (ensemble_draws.hpp).
  const EnsembleObservations observed = ensemble_observations(predictions, config_, seed_, step);
  bool ok = m > 0 && observed.noise.allFinite();
  if (ok) {
    analysis_ = ensemble_analysis(predictions, observed.values, observed.noise);
    ok = analysis_.ok;
  }
  const bool skip = any_rank(collectives_, !ok);
  if (!skip) apply_ensemble_analysis(members_, analysis_.weights);
  report.skipped = skip;
  ++steps_;
  return report;
}

GptParameters<double> EnsembleCuda::mean_parameters() const {
  GptParameters<double> p = GptParameters<double>::zeros(model_);
  subspace_.embed(members_.rowwise().mean(), p);
  return p;
}

void EnsembleCuda::restore(const Eigen::VectorXd& base, Eigen::MatrixXd members, std::int64_t steps,
                           std::uint64_t seed) {
  if (members.rows() != subspace_.dimension() || members.cols() != config_.members)
    throw std::invalid_argument(
        "kwm-ensemble on CUDA: restored members are " + std::to_string(members.rows()) + " x " +
        std::to_string(members.cols()) + "; expected " + std::to_string(subspace_.dimension()) +
        " x " + std::to_string(config_.members));
  subspace_.set_base(base);
  members_ = std::move(members);
  steps_ = steps;
  seed_ = seed;
  upload_base();
}

void EnsembleCuda::shift_base(const Eigen::VectorXd& delta) {
  subspace_.shift_base(delta, members_);
  upload_base();
}

}  // namespace kwm::lm::cuda
