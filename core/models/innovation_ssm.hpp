// Innovation-form linear state-space model, trained by the recursive prediction-error method:
//   yhat_t = C x_t + D v_t,  e_t = y_t - yhat_t,  x_{t+1} = A x_t + B v_t + K e_t
// with v_t = [u_t; y_{t-1}; ...; y_{t-p}] (normalised) and exact forward sensitivities dx_t/dtheta.
#pragma once

#include <cstdint>
#include <string>

#include "core/models/sequence_model.hpp"

namespace kwm {

struct InnovationSsmConfig {
  Index n_in = 0;               // exogenous inputs u
  Index n_out = 1;              // observed channels y
  Index output_lags = 0;        // past observations appended to the input
  Index states = 2;             // n_x
  bool feedthrough = true;      // D present
  bool innovation_gain = true;  // K present (false: output-error model, [C D] exactly linear)
  double initial_radius = 0.5;  // spectral radius of the random initial A, in [0, 1)
  std::uint64_t seed = 1;       // initial A, B, C

  // Throws std::invalid_argument naming the offending key.
  void validate() const;
};

// theta layout (groups, each matrix row-major, unit = row):
//   "A" recurrence n_x x n_x | "B" input n_x x n_v | "K" innovation_gain n_x x n_out |
//   "readout" linear_readout n_out x (n_x [+ n_v]) = [C D]
// A is a full matrix: the model is small, and a full A lets the filter find any basis.
class InnovationSsm final : public SequenceModel {
 public:
  explicit InnovationSsm(const InnovationSsmConfig& config);

  std::string type_name() const override { return "innovation_ssm"; }
  const InnovationSsmConfig& config() const { return config_; }

  const Eigen::MatrixXd& A() const { return a_; }
  const Eigen::MatrixXd& B() const { return b_; }
  const Eigen::MatrixXd& K() const { return k_; }
  const Eigen::MatrixXd& C() const { return c_; }
  const Eigen::MatrixXd& D() const { return d_; }
  const Eigen::VectorXd& state() const { return x_; }

 private:
  void on_theta_changed() override;
  void reset_state() override;
  void export_state(RecurrentState& state) const override;
  void import_state(const RecurrentState& state) override;
  void predict(const Eigen::VectorXd& input, LinearizedPrediction& prediction) override;
  void commit(const Eigen::VectorXd& y) override;
  StabilityReport project(double margin) override;

  InnovationSsmConfig config_;
  Index n_x_, n_v_, n_y_;
  Index offset_a_, offset_b_, offset_k_, offset_readout_;
  Eigen::MatrixXd a_, b_, k_, c_, d_;
  Eigen::VectorXd x_;         // x_t
  Eigen::MatrixXd dx_;        // dx_t / dtheta, n_x x P
  Eigen::VectorXd v_, yhat_;  // pending input and prediction of the last step
  Eigen::MatrixXd dyhat_;     // pending d yhat_t / d theta, n_out x P
};

}  // namespace kwm
