// Least-squares AR(p) / VAR(p) baseline, fit ONCE IN BATCH on the training split (not online):
// each output channel is regressed on an intercept, p lags (its own, or all channels' for VAR)
// and optionally the exogenous inputs u_t, by a Cholesky solve of the ridge-regularised normal
// equations. The predictive variance is the residual variance of the fit.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "core/eval/time_split.hpp"
#include "core/learners/sequence_learner.hpp"

namespace kwm {

struct AutoRegressiveConfig {
  Eigen::Index order = 1;         // p >= 1
  bool cross_channel = false;     // false: AR(p) per channel on its own lags; true: VAR(p)
  bool use_inputs = false;        // add u_t (the step's exogenous inputs) as regressors
  double ridge = 1e-10;           // lambda = ridge * trace(X^T X) / k added to X^T X; >= 0
  double variance_floor = 1e-12;  // lower bound on the residual variance (data units)
};

// A data-parallel fit (kwm train's distributed.mode: data_parallel): this process accumulates the
// normal equations (X^T X, X^T y, the row count) and the residual sum of squares over its share of
// the training rows only, part `part` of `parts` contiguous, equal shares; `sum` adds a buffer over
// the processes that share the fit, in place, with bitwise the same result on every process. The
// default (one part, no sum) is the ordinary fit. The solution is the same for every number of
// parts up to the order in which the partial sums are added.
struct RowShare {
  int part = 0;
  int parts = 1;
  std::function<void(double* data, std::size_t count)> sum;
};

// Regressor layout of equation i (the prediction of channel i), in coefficient order:
//   AR:  [1, y_{t-1,i}, ..., y_{t-p,i}, u_t]
//   VAR: [1, y_{t-1,0..m-1}, ..., y_{t-p,0..m-1}, u_t]
// (u_t only with use_inputs.)
class AutoRegressiveLearner final : public SequenceLearner {
 public:
  // inputs: n_in exogenous inputs per step (0 allowed), channels: m.
  // Throws std::invalid_argument on an invalid config.
  AutoRegressiveLearner(Eigen::Index inputs, Eigen::Index channels,
                        const AutoRegressiveConfig& config);

  std::string name() const override { return config_.cross_channel ? "var" : "ar"; }
  std::string jacobian_source() const override {
    return "none: closed-form least squares, fit once in batch on the training split (not "
           "online)";
  }

  // Fits every equation on rows `train` of inputs (T x n_in) and outputs (T x m). A row enters
  // an equation when its target and all its regressors are finite; lags never reach before
  // train.begin. Resets the state. Throws std::invalid_argument when an equation has fewer
  // complete rows than coefficients or the normal equations are not positive definite (decided on
  // the summed statistics, so every process of a shared fit throws alike).
  void fit(const Eigen::MatrixXd& inputs, const Eigen::MatrixXd& outputs,
           const eval::TimeRange& train, const RowShare& share = {});
  bool fitted() const { return fitted_; }

  // Coefficients of equation i, in the layout above; residual variance per channel.
  const Eigen::VectorXd& coefficients(Eigen::Index channel) const;
  const Eigen::VectorXd& residual_variance() const { return residual_variance_; }
  // Complete training rows used by equation i.
  Eigen::Index training_rows(Eigen::Index channel) const;

  // Throws std::logic_error before fit(). NaN inputs enter as their training mean.
  Prediction predict(const Eigen::VectorXd& u) override;
  // Pushes y_t onto the lag buffer; a missing entry is replaced by the model's own prediction
  // of it from the preceding predict() (required: throws std::logic_error otherwise). learn is
  // ignored: the fit is batch.
  void observe(const Eigen::VectorXd& y, bool learn) override;
  // Lags back to the training mean of each channel (the first p predictions are warm-up).
  void reset_state() override;

 private:
  Eigen::Index regressor_count() const;
  // Regressors of equation i from lags (row l = y_{t-1-l}) and inputs u; NaN when incomplete.
  Eigen::VectorXd regressors(Eigen::Index channel, const Eigen::MatrixXd& lags,
                             const Eigen::VectorXd& u) const;

  Eigen::Index n_in_, m_;
  AutoRegressiveConfig config_;
  bool fitted_ = false;
  std::vector<Eigen::VectorXd> coefficients_;
  std::vector<Eigen::Index> rows_used_;
  Eigen::VectorXd residual_variance_;
  Eigen::VectorXd output_mean_, input_mean_;  // training means: initial lags, missing inputs
  Eigen::MatrixXd lags_;                      // p x m, row l = y_{t-1-l} (filled)
  Eigen::VectorXd pending_mean_;              // mean of the last predict(), for missing values
  bool pending_ = false;
};

// Result of choosing p by one-step validation MSE (pooled over channels).
struct ArOrderSelection {
  Eigen::Index order = 0;
  std::vector<Eigen::Index> candidates;
  std::vector<double> validation_mse;  // one per candidate
};

// For each candidate p: fit on split.train, run the learner over the training rows to warm its
// lags (not scored), score split.validation. Returns the order with the lowest validation MSE
// (ties: the first candidate listed). Throws std::invalid_argument on an empty candidate list or an
// empty validation part. The learner has input_table.cols() inputs and output_table.cols()
// channels.
ArOrderSelection select_ar_order(const AutoRegressiveConfig& base,
                                 const std::vector<Eigen::Index>& candidates,
                                 const Eigen::MatrixXd& input_table,
                                 const Eigen::MatrixXd& output_table, const eval::TimeSplit& split);

}  // namespace kwm
