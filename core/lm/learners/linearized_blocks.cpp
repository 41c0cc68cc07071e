// Linear-layer, embedding and layer-norm Kalman blocks of the kwm-linearized learner.
#include "core/lm/learners/linearized_blocks.hpp"

#include <cmath>
#include <functional>
#include <stdexcept>

#include "core/lm/learners/augmented_linear.hpp"

namespace kwm::lm {
namespace {

// Shared-row block of one linear layer: [W b] on [a; 1].
class LinearBlock final : public KalmanBlock {
 public:
  LinearBlock(std::string name, Linear<double>* layer, std::size_t site)
      : name_(std::move(name)),
        layer_(layer),
        site_(site),
        d_in_(augmented_inputs(*layer)),
        d_out_(layer->weight.rows()) {}

  const std::string& name() const override { return name_; }
  double cost() const override { return std::pow(static_cast<double>(d_in_), 3.0); }
  std::size_t statistics_size() const override {
    return packed_triangle_size(d_in_) + static_cast<std::size_t>(d_out_ * d_in_) + 1;
  }

  // [packed sum a a^T | D = sum dz a^T | sum dz^2]
  void accumulate(const StepView& view, double* out) const override {
    const Eigen::MatrixXd a =
        augmented_input(view.cache->linear[site_].input, layer_->bias.size() > 0);
    const Eigen::MatrixXd& dz = view.innovations->linear_output[site_];
    Eigen::MatrixXd second_moment = Eigen::MatrixXd::Zero(d_in_, d_in_);
    second_moment.selfadjointView<Eigen::Lower>().rankUpdate(a);
    second_moment = second_moment.selfadjointView<Eigen::Lower>();
    pack_upper_triangle(second_moment, out);
    const std::size_t packed = packed_triangle_size(d_in_);
    Eigen::Map<Eigen::MatrixXd>(out + packed, d_out_, d_in_).noalias() = dz * a.transpose();
    out[statistics_size() - 1] = dz.squaredNorm();
  }

  double innovation_energy(const double* statistics, double tokens) const override {
    return statistics[statistics_size() - 1] / (static_cast<double>(d_out_) * tokens);
  }

  SharedRowOutcome update(const double* statistics, double r,
                          const BlockSettings& settings) override {
    const Eigen::MatrixXd increment = unpack_symmetric(statistics, d_in_) / r;
    const Eigen::MatrixXd cross =
        Eigen::Map<const Eigen::MatrixXd>(statistics + packed_triangle_size(d_in_), d_out_, d_in_) /
        r;
    Eigen::MatrixXd weight = augmented_weight(*layer_);
    const SharedRowOutcome outcome =
        shared_row_information_update(weight, information_, increment, cross, settings.lambda,
                                      settings.prior_precision, settings.jitter);
    if (outcome.applied) set_augmented_weight(*layer_, weight);
    return outcome;
  }

  std::size_t mean_size() const override { return static_cast<std::size_t>(d_out_ * d_in_); }
  void pack_mean(double* out) const override {
    Eigen::Map<Eigen::MatrixXd>(out, d_out_, d_in_) = augmented_weight(*layer_);
  }
  void unpack_mean(const double* in) override {
    set_augmented_weight(*layer_, Eigen::Map<const Eigen::MatrixXd>(in, d_out_, d_in_));
  }
  const Eigen::MatrixXd& information() const override { return information_; }
  void set_information(const Eigen::MatrixXd& information) override { information_ = information; }
  void reset_information(double prior_precision) override {
    information_ = Eigen::MatrixXd::Identity(d_in_, d_in_) * prior_precision;
  }

 private:
  std::string name_;
  Linear<double>* layer_;
  std::size_t site_;
  Eigen::Index d_in_;
  Eigen::Index d_out_;
  Eigen::MatrixXd information_;  // L, d_in x d_in (owner only)
};

// Token or position embedding: a linear layer on a one-hot input, diagonal input information.
class EmbeddingBlock final : public KalmanBlock {
 public:
  using RowOf = std::function<Eigen::Index(const ForwardCache<double>&, Eigen::Index column)>;
  using Innovation = std::function<const Matrix<double>&(const TransposedJacobian<double>&)>;

  EmbeddingBlock(std::string name, Matrix<double>* table, RowOf row_of, Innovation innovation)
      : name_(std::move(name)),
        table_(table),
        row_of_(std::move(row_of)),
        innovation_(std::move(innovation)) {}

  const std::string& name() const override { return name_; }
  double cost() const override { return static_cast<double>(table_->size()); }
  std::size_t statistics_size() const override {
    return static_cast<std::size_t>(table_->rows() + table_->size());
  }

  // [count per row | D = J_E^T e (rows x d)]
  void accumulate(const StepView& view, double* out) const override {
    const Eigen::Index rows = table_->rows();
    Eigen::Map<Eigen::VectorXd> counts(out, rows);
    counts.setZero();
    const auto columns = static_cast<Eigen::Index>(view.cache->tokens.size());
    for (Eigen::Index n = 0; n < columns; ++n) counts(row_of_(*view.cache, n)) += 1.0;
    Eigen::Map<Eigen::MatrixXd>(out + rows, rows, table_->cols()) = innovation_(*view.innovations);
  }

  // Per-token energy of the row-mean innovations D_v / count_v, weighted by count: exact when
  // every row occurs once per batch, a lower bound otherwise (D carries only per-row sums).
  double innovation_energy(const double* statistics, double tokens) const override {
    const Eigen::Index rows = table_->rows();
    const Eigen::Map<const Eigen::MatrixXd> cross(statistics + rows, rows, table_->cols());
    double energy = 0.0;
    for (Eigen::Index v = 0; v < rows; ++v)
      if (statistics[v] > 0.0) energy += cross.row(v).squaredNorm() / statistics[v];
    return energy / (static_cast<double>(table_->cols()) * tokens);
  }

  SharedRowOutcome update(const double* statistics, double r,
                          const BlockSettings& settings) override {
    const Eigen::Index rows = table_->rows();
    const Eigen::Map<const Eigen::VectorXd> counts(statistics, rows);
    const Eigen::Map<const Eigen::MatrixXd> cross(statistics + rows, rows, table_->cols());
    SharedRowOutcome outcome;
    if (!counts.allFinite() || !cross.allFinite()) {
      outcome.nonfinite = true;
      return outcome;
    }
    const Eigen::VectorXd updated =
        (settings.lambda * information_.col(0).array() +
         (1.0 - settings.lambda) * settings.prior_precision + counts.array() / r)
            .matrix();
    const Eigen::MatrixXd step =
        (cross.array().colwise() / (r * updated.array())).matrix();  // (1/r) D_v / l_v
    if (!step.allFinite()) {
      outcome.nonfinite = true;
      return outcome;
    }
    *table_ += step;
    information_.col(0) = updated;
    outcome.applied = true;
    return outcome;
  }

  std::size_t mean_size() const override { return static_cast<std::size_t>(table_->size()); }
  void pack_mean(double* out) const override {
    Eigen::Map<Eigen::MatrixXd>(out, table_->rows(), table_->cols()) = *table_;
  }
  void unpack_mean(const double* in) override {
    *table_ = Eigen::Map<const Eigen::MatrixXd>(in, table_->rows(), table_->cols());
  }
  const Eigen::MatrixXd& information() const override { return information_; }
  void set_information(const Eigen::MatrixXd& information) override { information_ = information; }
  void reset_information(double prior_precision) override {
    information_ = Eigen::MatrixXd::Constant(table_->rows(), 1, prior_precision);
  }

 private:
  std::string name_;
  Matrix<double>* table_;
  RowOf row_of_;
  Innovation innovation_;
  Eigen::MatrixXd information_;  // diagonal of L, rows x 1 (owner only)
};

// Layer norm affine map: a 2 x 2 information block [[sum x^2, sum x], [sum x, n]] per coordinate.
class LayerNormBlock final : public KalmanBlock {
 public:
  using CacheOf = std::function<const LayerNormCache<double>&(const ForwardCache<double>&)>;

  LayerNormBlock(std::string name, LayerNormParams<double>* norm, CacheOf cache_of,
                 const Linear<double>* consumer, std::size_t consumer_site)
      : name_(std::move(name)),
        norm_(norm),
        cache_of_(std::move(cache_of)),
        consumer_(consumer),
        consumer_site_(consumer_site),
        d_(norm->gain.size()) {}

  const std::string& name() const override { return name_; }
  double cost() const override { return 8.0 * static_cast<double>(d_); }
  std::size_t statistics_size() const override { return static_cast<std::size_t>(5 * d_ + 2); }

  // [sum xhat^2 | sum xhat | sum dy xhat | sum dy | tokens | sum dy^2], each of the four d long.
  void accumulate(const StepView& view, double* out) const override {
    const Eigen::MatrixXd& xhat = cache_of_(*view.cache).normalized;
    const Eigen::MatrixXd dy =
        consumer_->weight.transpose() * view.innovations->linear_output[consumer_site_];
    Eigen::Map<Eigen::VectorXd>(out, d_) = xhat.array().square().rowwise().sum();
    Eigen::Map<Eigen::VectorXd>(out + d_, d_) = xhat.rowwise().sum();
    Eigen::Map<Eigen::VectorXd>(out + 2 * d_, d_) = (dy.array() * xhat.array()).rowwise().sum();
    Eigen::Map<Eigen::VectorXd>(out + 3 * d_, d_) = dy.rowwise().sum();
    out[4 * d_] = static_cast<double>(xhat.cols());
    out[4 * d_ + 1] = dy.squaredNorm();
  }

  double innovation_energy(const double* statistics, double tokens) const override {
    return statistics[4 * d_ + 1] / (static_cast<double>(d_) * tokens);
  }

  SharedRowOutcome update(const double* statistics, double r,
                          const BlockSettings& settings) override {
    SharedRowOutcome outcome;
    const double tokens = statistics[4 * d_];
    Eigen::MatrixXd information = information_;  // d x 3: (l11, l12, l22) per coordinate
    Eigen::VectorXd gain = norm_->gain;
    Eigen::VectorXd bias = norm_->bias;
    for (Eigen::Index i = 0; i < d_; ++i) {
      Eigen::MatrixXd l(2, 2);
      l << information(i, 0), information(i, 1), information(i, 1), information(i, 2);
      Eigen::MatrixXd increment(2, 2);
      increment << statistics[i], statistics[d_ + i], statistics[d_ + i], tokens;
      Eigen::MatrixXd weight(1, 2);
      weight << gain(i), bias(i);
      Eigen::MatrixXd cross(1, 2);
      cross << statistics[2 * d_ + i], statistics[3 * d_ + i];
      const SharedRowOutcome one =
          shared_row_information_update(weight, l, increment / r, cross / r, settings.lambda,
                                        settings.prior_precision, settings.jitter);
      outcome.jitter_retries += one.jitter_retries;
      if (!one.applied) {  // the block moves as a whole or not at all
        outcome.nonfinite = one.nonfinite;
        return outcome;
      }
      information.row(i) << l(0, 0), l(0, 1), l(1, 1);
      gain(i) = weight(0, 0);
      bias(i) = weight(0, 1);
    }
    information_ = std::move(information);
    norm_->gain = gain;
    norm_->bias = bias;
    outcome.applied = true;
    return outcome;
  }

  std::size_t mean_size() const override { return static_cast<std::size_t>(2 * d_); }
  void pack_mean(double* out) const override {
    Eigen::Map<Eigen::VectorXd>(out, d_) = norm_->gain;
    Eigen::Map<Eigen::VectorXd>(out + d_, d_) = norm_->bias;
  }
  void unpack_mean(const double* in) override {
    norm_->gain = Eigen::Map<const Eigen::VectorXd>(in, d_);
    norm_->bias = Eigen::Map<const Eigen::VectorXd>(in + d_, d_);
  }
  const Eigen::MatrixXd& information() const override { return information_; }
  void set_information(const Eigen::MatrixXd& information) override { information_ = information; }
  void reset_information(double prior_precision) override {
    information_ = Eigen::MatrixXd::Zero(d_, 3);
    information_.col(0).setConstant(prior_precision);
    information_.col(2).setConstant(prior_precision);
  }

 private:
  std::string name_;
  LayerNormParams<double>* norm_;
  CacheOf cache_of_;
  const Linear<double>* consumer_;
  std::size_t consumer_site_;
  Eigen::Index d_;
  Eigen::MatrixXd information_;
};

}  // namespace

std::vector<std::unique_ptr<KalmanBlock>> make_linearized_blocks(
    GptParameters<double>& parameters) {
  const GptConfig& config = parameters.config;
  if (config.tied_head || parameters.head.weight.size() == 0)
    throw std::invalid_argument("kwm-linearized blocks need an untied head");
  std::vector<std::unique_ptr<KalmanBlock>> blocks;
  blocks.push_back(std::make_unique<EmbeddingBlock>(
      "token_embedding", &parameters.token_embedding,
      [](const ForwardCache<double>& c, Eigen::Index n) {
        return static_cast<Eigen::Index>(c.tokens[static_cast<std::size_t>(n)]);
      },
      [](const TransposedJacobian<double>& j) -> const Matrix<double>& {
        return j.parameters.token_embedding;
      }));
  blocks.push_back(std::make_unique<EmbeddingBlock>(
      "position_embedding", &parameters.position_embedding,
      [](const ForwardCache<double>& c, Eigen::Index n) { return n % c.length; },
      [](const TransposedJacobian<double>& j) -> const Matrix<double>& {
        return j.parameters.position_embedding;
      }));
  for (int i = 0; i < config.n_layers; ++i) {
    auto& block = parameters.blocks[static_cast<std::size_t>(i)];
    const std::string prefix = "blocks." + std::to_string(i) + ".";
    const auto site = [i](BlockLinear which) { return linear_index(i, which); };
    const auto index = static_cast<std::size_t>(i);
    blocks.push_back(std::make_unique<LayerNormBlock>(
        prefix + "ln1", &block.ln1,
        [index](const ForwardCache<double>& c) -> const LayerNormCache<double>& {
          return c.blocks[index].ln1;
        },
        &block.qkv, site(BlockLinear::qkv)));
    blocks.push_back(
        std::make_unique<LinearBlock>(prefix + "qkv", &block.qkv, site(BlockLinear::qkv)));
    blocks.push_back(std::make_unique<LinearBlock>(prefix + "attn_out", &block.attn_out,
                                                   site(BlockLinear::attn_out)));
    blocks.push_back(std::make_unique<LayerNormBlock>(
        prefix + "ln2", &block.ln2,
        [index](const ForwardCache<double>& c) -> const LayerNormCache<double>& {
          return c.blocks[index].ln2;
        },
        &block.fc, site(BlockLinear::fc)));
    blocks.push_back(
        std::make_unique<LinearBlock>(prefix + "fc", &block.fc, site(BlockLinear::fc)));
    blocks.push_back(
        std::make_unique<LinearBlock>(prefix + "proj", &block.proj, site(BlockLinear::proj)));
  }
  const std::size_t head = head_linear_index(config);
  blocks.push_back(std::make_unique<LayerNormBlock>(
      "ln_f", &parameters.ln_f,
      [](const ForwardCache<double>& c) -> const LayerNormCache<double>& { return c.ln_f; },
      &parameters.head, head));
  blocks.push_back(std::make_unique<LinearBlock>("head", &parameters.head, head));
  return blocks;
}

}  // namespace kwm::lm
