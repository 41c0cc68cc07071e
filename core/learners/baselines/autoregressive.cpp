// AR(p) / VAR(p) by ridge-regularised normal equations (Cholesky), and order selection.
#include "core/learners/baselines/autoregressive.hpp"

#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/eval/one_step_evaluation.hpp"

namespace kwm {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

AutoRegressiveLearner::AutoRegressiveLearner(Eigen::Index inputs, Eigen::Index channels,
                                             const AutoRegressiveConfig& config)
    : n_in_(inputs), m_(channels), config_(config) {
  if (channels < 1 || inputs < 0) {
    throw std::invalid_argument("ar: need at least one output channel and n_in >= 0; got " +
                                std::to_string(channels) + " channels, " + std::to_string(inputs) +
                                " inputs");
  }
  if (config.order < 1) {
    throw std::invalid_argument("ar.order must be >= 1; got " + std::to_string(config.order));
  }
  if (!(config.ridge >= 0) || !std::isfinite(config.ridge)) {
    throw std::invalid_argument("ar.ridge must be finite and >= 0; got " +
                                std::to_string(config.ridge));
  }
  if (!(config.variance_floor > 0)) {
    throw std::invalid_argument("ar.variance_floor must be positive; got " +
                                std::to_string(config.variance_floor));
  }
  coefficients_.assign(static_cast<std::size_t>(m_), Eigen::VectorXd());
  rows_used_.assign(static_cast<std::size_t>(m_), 0);
  residual_variance_ = Eigen::VectorXd::Constant(m_, kNaN);
  output_mean_ = Eigen::VectorXd::Zero(m_);
  input_mean_ = Eigen::VectorXd::Zero(n_in_);
  lags_ = Eigen::MatrixXd::Zero(config_.order, m_);
}

Eigen::Index AutoRegressiveLearner::regressor_count() const {
  const Eigen::Index lag_width = config_.cross_channel ? m_ : 1;
  return 1 + config_.order * lag_width + (config_.use_inputs ? n_in_ : 0);
}

Eigen::VectorXd AutoRegressiveLearner::regressors(Eigen::Index channel, const Eigen::MatrixXd& lags,
                                                  const Eigen::VectorXd& u) const {
  Eigen::VectorXd x(regressor_count());
  Eigen::Index k = 0;
  x(k++) = 1.0;
  for (Eigen::Index l = 0; l < config_.order; ++l) {
    if (config_.cross_channel) {
      x.segment(k, m_) = lags.row(l).transpose();
      k += m_;
    } else {
      x(k++) = lags(l, channel);
    }
  }
  if (config_.use_inputs) x.segment(k, n_in_) = u;
  return x;
}

void AutoRegressiveLearner::fit(const Eigen::MatrixXd& inputs, const Eigen::MatrixXd& outputs,
                                const eval::TimeRange& train, const RowShare& share) {
  if (share.parts < 1 || share.part < 0 || share.part >= share.parts ||
      (share.parts > 1 && !share.sum)) {
    throw std::invalid_argument("ar.fit: row share " + std::to_string(share.part) + " of " +
                                std::to_string(share.parts) +
                                " is not a valid share (several parts need a sum)");
  }
  if (outputs.cols() != m_ || (n_in_ > 0 && inputs.cols() != n_in_) ||
      (n_in_ > 0 && inputs.rows() != outputs.rows())) {
    throw std::invalid_argument(
        "ar.fit: expected " + std::to_string(n_in_) + " input and " + std::to_string(m_) +
        " output columns with equal rows; got " + std::to_string(inputs.cols()) + " x " +
        std::to_string(inputs.rows()) + " and " + std::to_string(outputs.cols()) + " x " +
        std::to_string(outputs.rows()));
  }
  if (train.begin < 0 || train.end > outputs.rows() || train.begin > train.end) {
    throw std::invalid_argument("ar.fit: training rows [" + std::to_string(train.begin) + ", " +
                                std::to_string(train.end) + ") lie outside a series of " +
                                std::to_string(outputs.rows()) + " steps");
  }
  const eval::ChannelStatistics out_stats = eval::channel_statistics(outputs, train);
  output_mean_ = out_stats.mean.unaryExpr([](double v) { return std::isnan(v) ? 0.0 : v; });
  if (n_in_ > 0) {
    const eval::ChannelStatistics in_stats = eval::channel_statistics(inputs, train);
    input_mean_ = in_stats.mean.unaryExpr([](double v) { return std::isnan(v) ? 0.0 : v; });
  }

  const Eigen::Index p = config_.order;
  const Eigen::Index k = regressor_count();
  Eigen::MatrixXd lags(p, m_);
  for (Eigen::Index i = 0; i < m_; ++i) {
    // Accumulate X^T X and X^T y over the complete rows of equation i.
    Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(k, k);
    Eigen::VectorXd moment = Eigen::VectorXd::Zero(k);
    std::vector<Eigen::VectorXd> rows;
    std::vector<double> targets;
    const Eigen::Index first = std::min(train.begin + p, train.end);
    const Eigen::Index span = train.end - first;
    for (Eigen::Index t = first + span * share.part / share.parts;
         t < first + span * (share.part + 1) / share.parts; ++t) {
      const double target = outputs(t, i);
      if (std::isnan(target)) continue;
      for (Eigen::Index l = 0; l < p; ++l) lags.row(l) = outputs.row(t - 1 - l);
      const Eigen::VectorXd u =
          n_in_ > 0 ? Eigen::VectorXd(inputs.row(t).transpose()) : Eigen::VectorXd();
      const Eigen::VectorXd x = regressors(i, lags, u);
      if (!x.allFinite() || !std::isfinite(target)) continue;
      gram.selfadjointView<Eigen::Lower>().rankUpdate(x);
      moment += target * x;
      rows.push_back(x);
      targets.push_back(target);
    }
    // Data-parallel: add the other shares' lower triangle of X^T X, X^T y and row count.
    Eigen::Index n = static_cast<Eigen::Index>(rows.size());
    if (share.sum) {
      std::vector<double> packed;
      for (Eigen::Index c = 0; c < k; ++c)
        for (Eigen::Index r = c; r < k; ++r) packed.push_back(gram(r, c));
      packed.insert(packed.end(), moment.data(), moment.data() + k);
      packed.push_back(static_cast<double>(n));
      share.sum(packed.data(), packed.size());
      std::size_t at = 0;
      for (Eigen::Index c = 0; c < k; ++c)
        for (Eigen::Index r = c; r < k; ++r) gram(r, c) = packed[at++];
      for (Eigen::Index r = 0; r < k; ++r) moment(r) = packed[at++];
      n = static_cast<Eigen::Index>(std::llround(packed[at]));
    }
    if (n < k) {
      throw std::invalid_argument("ar.fit: channel " + std::to_string(i) + " has " +
                                  std::to_string(n) + " complete training rows for " +
                                  std::to_string(k) +
                                  " coefficients; lower ar.order or use more training data");
    }
    gram.triangularView<Eigen::StrictlyUpper>() = gram.transpose();
    const double lambda = config_.ridge * gram.trace() / static_cast<double>(k);
    gram.diagonal().array() += lambda;
    const Eigen::LLT<Eigen::MatrixXd> llt(gram);
    if (llt.info() != Eigen::Success) {
      throw std::invalid_argument("ar.fit: the normal equations of channel " + std::to_string(i) +
                                  " are not positive definite (collinear regressors?); raise "
                                  "ar.ridge");
    }
    Eigen::VectorXd beta = llt.solve(moment);
    double residual_squares = 0;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const double e = targets[r] - rows[r].dot(beta);
      residual_squares += e * e;
    }
    if (share.sum) share.sum(&residual_squares, 1);
    // Unbiased residual variance; with n = k (a perfect fit) fall back to the floor.
    const double dof = static_cast<double>(std::max<Eigen::Index>(n - k, 1));
    const auto idx = static_cast<std::size_t>(i);
    residual_variance_(i) = std::max(residual_squares / dof, config_.variance_floor);
    coefficients_[idx] = std::move(beta);
    rows_used_[idx] = n;
  }
  fitted_ = true;
  reset_state();
}

const Eigen::VectorXd& AutoRegressiveLearner::coefficients(Eigen::Index channel) const {
  if (channel < 0 || channel >= m_) {
    throw std::out_of_range("ar: channel " + std::to_string(channel) + " not in [0, " +
                            std::to_string(m_) + ")");
  }
  return coefficients_[static_cast<std::size_t>(channel)];
}

Eigen::Index AutoRegressiveLearner::training_rows(Eigen::Index channel) const {
  coefficients(channel);  // range check
  return rows_used_[static_cast<std::size_t>(channel)];
}

Prediction AutoRegressiveLearner::predict(const Eigen::VectorXd& u) {
  if (!fitted_) throw std::logic_error("ar: predict() before fit()");
  Eigen::VectorXd inputs = input_mean_;
  if (config_.use_inputs && n_in_ > 0) {
    if (u.size() != n_in_) {
      throw std::invalid_argument("ar: expected " + std::to_string(n_in_) + " inputs; got " +
                                  std::to_string(u.size()));
    }
    for (Eigen::Index j = 0; j < n_in_; ++j) {
      if (std::isfinite(u(j))) inputs(j) = u(j);
    }
  }
  Prediction p;
  p.mean.resize(m_);
  for (Eigen::Index i = 0; i < m_; ++i) {
    p.mean(i) = regressors(i, lags_, inputs).dot(coefficients_[static_cast<std::size_t>(i)]);
  }
  p.variance = residual_variance_;
  pending_mean_ = p.mean;
  pending_ = true;
  return p;
}

void AutoRegressiveLearner::observe(const Eigen::VectorXd& y, bool /*learn*/) {
  if (y.size() != m_) {
    throw std::invalid_argument("ar: expected " + std::to_string(m_) + " observed channels; got " +
                                std::to_string(y.size()));
  }
  if (!pending_) throw std::logic_error("ar: observe() without a preceding predict()");
  pending_ = false;
  // Shift the lag buffer down one row; a missing value is filled with the model's own forecast.
  for (Eigen::Index l = config_.order - 1; l > 0; --l) lags_.row(l) = lags_.row(l - 1);
  for (Eigen::Index i = 0; i < m_; ++i) {
    lags_(0, i) = std::isnan(y(i)) ? pending_mean_(i) : y(i);
  }
}

void AutoRegressiveLearner::reset_state() {
  lags_ = output_mean_.transpose().replicate(config_.order, 1);
  pending_ = false;
}

ArOrderSelection select_ar_order(const AutoRegressiveConfig& base,
                                 const std::vector<Eigen::Index>& candidates,
                                 const Eigen::MatrixXd& input_table,
                                 const Eigen::MatrixXd& output_table,
                                 const eval::TimeSplit& split) {
  if (candidates.empty()) throw std::invalid_argument("ar order selection: no candidate orders");
  if (split.validation.size() < 1) {
    throw std::invalid_argument("ar order selection needs a non-empty validation part");
  }
  ArOrderSelection selection;
  selection.candidates = candidates;
  double best = std::numeric_limits<double>::infinity();
  for (const Eigen::Index order : candidates) {
    AutoRegressiveConfig config = base;
    config.order = order;
    AutoRegressiveLearner learner(input_table.cols(), output_table.cols(), config);
    learner.fit(input_table, output_table, split.train);
    eval::run_one_step(learner, input_table, output_table, split.train, false, nullptr);
    const double mse =
        eval::evaluate_one_step(learner, input_table, output_table, split.validation, false)
            .overall.mse;
    selection.validation_mse.push_back(mse);
    if (mse < best) {
      best = mse;
      selection.order = order;
    }
  }
  return selection;
}

}  // namespace kwm
