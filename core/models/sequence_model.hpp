// The interface every sequence model implements for the Kalman learners: theta as one vector in
// named groups, a one-step prediction with its exact Jacobian H_t = d yhat_t / d theta from
// forward sensitivities (no backpropagation), then advance(y_t) to move state and sensitivities on.
//
// Units: step() takes raw inputs and advance() raw observations; the model normalises both with
// its stored Normalization. yhat and H are in normalised output units, so innovations and R are
// comparable across channels: e_t = normalized_observation(y_t) - yhat_t.
#pragma once

#include <Eigen/Dense>
#include <string>
#include <utility>
#include <vector>

#include "core/models/lagged_outputs.hpp"
#include "core/models/normalization.hpp"
#include "core/models/parameter_group.hpp"

namespace kwm {

// The observation model linearised at the current theta for one step: yhat_t and H_t. (Named so
// as not to clash with the learners' predictive distribution, kwm::Prediction.)
struct LinearizedPrediction {
  Eigen::VectorXd yhat;  // n_out, normalised units
  // One block per parameter group: n_out x group.size, d yhat / d theta_group. A block the caller
  // did not request (SequenceModel::request_jacobians) is left 0 x 0.
  std::vector<Eigen::MatrixXd> jacobian;

  // The n_out x P matrix [H_group0 | H_group1 | ...]; throws when a block was not computed.
  Eigen::MatrixXd dense_jacobian() const;
};

// The activation a_t of a group with linear_in_parameters: row 0 of its Jacobian block, unit 0.
Eigen::VectorXd shared_row_activation(const LinearizedPrediction& prediction,
                                      const std::vector<ParameterGroup>& groups, Index group);

struct StabilityReport {
  bool changed = false;        // theta was modified
  double spectral_radius = 0;  // largest recurrent spectral radius after the projection
};

inline constexpr double kDefaultStabilityMargin = 1e-3;

// A model's recurrent state at a step boundary as named host arrays (complex parts as separate
// real arrays): what a checkpoint saves so that a resumed run continues bit for bit.
using RecurrentState = std::vector<std::pair<std::string, Eigen::MatrixXd>>;
// The array called `name` in `state`, checked to be rows x cols; throws std::invalid_argument.
const Eigen::MatrixXd& state_array(const RecurrentState& state, const std::string& name, Index rows,
                                   Index cols);

class SequenceModel {
 public:
  virtual ~SequenceModel() = default;
  SequenceModel(const SequenceModel&) = delete;
  SequenceModel& operator=(const SequenceModel&) = delete;

  // "innovation_ssm" or "diagonal_stack": the `type` key of the model's YAML config.
  virtual std::string type_name() const = 0;

  Index input_size() const { return n_in_; }     // exogenous inputs per step (may be 0)
  Index output_size() const { return n_out_; }   // observed channels per step
  Index output_lags() const { return n_lags_; }  // past observations appended to the input
  Index parameter_count() const { return theta_.size(); }
  const std::vector<ParameterGroup>& groups() const { return groups_; }

  const Eigen::VectorXd& theta() const { return theta_; }
  // Throws std::invalid_argument on a wrong size or a non-finite entry. State and sensitivities
  // are kept (the recursive prediction-error method continues them across updates).
  void set_theta(const Eigen::VectorXd& theta);

  // Recurrent state, sensitivities and lags to zero.
  void reset();
  // State, sensitivities and lags between advance() and the next step() (a step boundary), and
  // their restore; set_recurrent_state throws std::invalid_argument on a missing or misshapen
  // array. Theta and the normalisation are not part of it.
  RecurrentState recurrent_state() const;
  void set_recurrent_state(const RecurrentState& state);
  // Prediction for time t from the state at t and the raw input u_t (n_in; NaN entries enter as
  // the channel mean). Calling it again before advance() recomputes the same step.
  const LinearizedPrediction& step(const Eigen::VectorXd& u);
  // Consumes the raw observation y_t (n_out; NaN = missing) and moves state and sensitivities to
  // t + 1 with the current theta. Requires a step() for t first.
  void advance(const Eigen::VectorXd& y);

  // Projects theta back into the stable set after a parameter update: every recurrent spectral
  // radius <= 1 - margin, margin in (0, 1). See each model for what is scaled.
  StabilityReport project_to_stable(double margin = kDefaultStabilityMargin);

  // Which Jacobian blocks step() fills, one flag per group (default: all). Large models skip
  // the work for blocks no learner updates.
  void request_jacobians(const std::vector<bool>& wanted);
  bool jacobian_requested(Index group) const { return wanted_[static_cast<std::size_t>(group)]; }

  const Normalization& normalization() const { return normalization_; }
  // Throws std::invalid_argument when the channel counts differ or a scale is not positive.
  void set_normalization(const Normalization& normalization);
  // (y - mean) / scale, NaN kept: the target the innovation is formed against.
  Eigen::VectorXd normalized_observation(const Eigen::VectorXd& y) const;
  // yhat * scale + mean: the prediction in data units.
  Eigen::VectorXd prediction_in_data_units(const LinearizedPrediction& prediction) const;

 protected:
  SequenceModel(Index n_in, Index n_out, Index n_lags);
  // Called once by the derived constructor after it laid out theta.
  void set_layout(const ParameterLayout& layout, Eigen::VectorXd initial_theta);
  // Size of the model input: n_in + n_out * n_lags.
  Index model_input_size() const { return n_in_ + n_out_ * n_lags_; }
  // Copies columns [theta_offset, theta_offset + block.cols()) of H into the requested groups'
  // blocks; every group in that range must lie wholly inside it.
  void store_jacobian_columns(Index theta_offset, const Eigen::Ref<const Eigen::MatrixXd>& block,
                              LinearizedPrediction& prediction) const;
  // True when any group overlapping [offset, offset + size) was requested.
  bool any_requested(Index offset, Index size) const;

  virtual void on_theta_changed() = 0;
  virtual void reset_state() = 0;
  // input: the normalised model input [u; lags]. Fills yhat and the requested Jacobian blocks
  // (already sized n_out x group.size) without touching the committed state.
  virtual void predict(const Eigen::VectorXd& input, LinearizedPrediction& prediction) = 0;
  // y: normalised observation (NaN = missing); commits the pending state of the last predict.
  virtual void commit(const Eigen::VectorXd& y) = 0;
  virtual StabilityReport project(double margin) = 0;
  // The derived model's part of recurrent_state() / set_recurrent_state().
  virtual void export_state(RecurrentState& state) const = 0;
  virtual void import_state(const RecurrentState& state) = 0;

  Eigen::VectorXd theta_;

 private:
  Index n_in_, n_out_, n_lags_;
  Index layout_size_ = 0;
  std::vector<ParameterGroup> groups_;
  std::vector<bool> wanted_;
  Normalization normalization_;
  LaggedOutputs lags_;
  Eigen::VectorXd input_;
  LinearizedPrediction prediction_;
  bool stepped_ = false;
};

}  // namespace kwm
