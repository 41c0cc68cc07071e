// The Kalman sequence learners of ALGORITHMS.md sections 2 and 5(b): a SequenceModel's parameters
// are the state of a decoupled EKF, H_t comes from the model's forward sensitivities (RTRL:
// reverse-free, no backpropagation through time), and every observation is one Riccati update.
// sensitivity-DEKF, the dense (global) EKF and the diagonal EKF differ only in blocking.
#pragma once

#include <memory>
#include <vector>

#include "core/kalman/decoupled_ekf.hpp"
#include "core/kalman/observation_noise.hpp"
#include "core/kalman/parameter_block.hpp"
#include "core/learners/kalman/kalman_learner_config.hpp"
#include "core/learners/sequence_learner.hpp"
#include "core/models/sequence_model.hpp"

namespace kwm {

class KalmanSequenceLearner final : public SequenceLearner {
 public:
  // Takes the model with its current theta as the prior mean, P_0 = initial_variance I.
  // `reduce` sums the innovation statistics over ranks (empty: single process).
  KalmanSequenceLearner(std::unique_ptr<SequenceModel> model, const KalmanLearnerConfig& config,
                        AllReduceSum<double> reduce = {});

  std::string name() const override { return to_string(config_.kind); }
  std::string jacobian_source() const override;
  Prediction predict(const Eigen::VectorXd& u) override;
  void observe(const Eigen::VectorXd& y, bool learn) override;
  void reset_state() override { model_->reset(); }

  const SequenceModel& model() const { return *model_; }
  SequenceModel& model() { return *model_; }
  Backend<double>& backend() { return *backend_; }
  const std::vector<ParameterBlock<double>>& blocks() const { return blocks_; }
  const DecoupledEkf<double>& filter() const { return ekf_; }
  const ObservationNoise<double>& noise() const { return noise_; }
  const KalmanLearnerConfig& config() const { return config_; }
  // Mean NIS over the updates so far (m when the filter is consistent); NaN before the first.
  double mean_nis() const;
  std::int64_t stability_projections() const { return projections_; }

 private:
  // Where block b sits in theta.
  struct Slice {
    Index offset = 0;
    Index size = 0;
  };

  void build_blocks();
  // H_b = d yhat / d theta[offset, offset + size), assembled from the model's group blocks.
  Eigen::MatrixXd jacobian_slice(const LinearizedPrediction& prediction, const Slice& slice) const;
  // Copies block means into theta, projects to stability when due, and copies theta back.
  void write_back_means();

  KalmanLearnerConfig config_;
  std::unique_ptr<SequenceModel> model_;
  std::unique_ptr<Backend<double>> backend_;
  AllReduceSum<double> reduce_;
  std::vector<ParameterBlock<double>> blocks_;
  std::vector<Slice> slices_;
  DecoupledEkf<double> ekf_;
  ObservationNoise<double> noise_;

  std::vector<Tensor<double>> jacobians_;  // H_b of the last predict(), in backend memory
  Eigen::VectorXd yhat_;                   // last prediction, normalised units
  bool predicted_ = false;
  std::int64_t updates_ = 0;
  std::int64_t projections_ = 0;
};

}  // namespace kwm
