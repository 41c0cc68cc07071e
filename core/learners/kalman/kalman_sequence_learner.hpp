// The Kalman sequence learners of ALGORITHMS.md sections 2 and 5(b): a SequenceModel's parameters
// are the state of a decoupled EKF, H_t comes from the model's forward sensitivities (RTRL:
// reverse-free, no backpropagation through time), and every observation is one Riccati update.
// sensitivity-DEKF, the dense (global) EKF and the diagonal EKF differ only in blocking.
// Sharded (LearnerSharding): each rank keeps covariance only for the blocks it owns; the m x m
// statistics are all-reduced and the updated means all-gathered, so theta stays identical on
// every rank.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "core/kalman/decoupled_ekf.hpp"
#include "core/kalman/observation_noise.hpp"
#include "core/kalman/parameter_block.hpp"
#include "core/learners/kalman/kalman_learner_config.hpp"
#include "core/learners/kalman/learner_sharding.hpp"
#include "core/learners/sequence_learner.hpp"
#include "core/models/sequence_model.hpp"

namespace kwm {

// The learner's state shared by every rank, beyond theta and the blocks: what a checkpoint stores
// in its index so that a resumed run takes the same decisions.
struct KalmanLearnerState {
  FilterCounters counters;  // DecoupledEkf totals
  double nis_sum = 0.0;
  std::int64_t nis_count = 0;
  std::vector<double> noise_estimate;  // adaptive R's EMA (empty before the first step)
  std::int64_t updates = 0;            // applied updates (drives project_every)
  std::int64_t projections = 0;
};

class KalmanSequenceLearner final : public SequenceLearner {
 public:
  // Takes the model with its current theta as the prior mean, P_0 = initial_variance I.
  // `sharding` spreads the blocks over ranks (default: single process, every block local).
  KalmanSequenceLearner(std::unique_ptr<SequenceModel> model, const KalmanLearnerConfig& config,
                        LearnerSharding sharding = {});

  std::string name() const override { return to_string(config_.kind); }
  std::string jacobian_source() const override;
  Prediction predict(const Eigen::VectorXd& u) override;
  void observe(const Eigen::VectorXd& y, bool learn) override;
  void reset_state() override { model_->reset(); }

  const SequenceModel& model() const { return *model_; }
  SequenceModel& model() { return *model_; }
  Backend<double>& backend() { return *backend_; }
  // The blocks this rank owns (all of them in a single process), ascending by global id.
  const std::vector<ParameterBlock<double>>& blocks() const { return blocks_; }
  // Every block of the model (global ids 0..B-1) with its owner rank.
  const std::vector<BlockShape>& block_shapes() const { return shapes_; }
  const std::vector<int>& block_owners() const { return owners_; }
  const LearnerSharding& sharding() const { return sharding_; }
  const DecoupledEkf<double>& filter() const { return ekf_; }
  const ObservationNoise<double>& noise() const { return noise_; }
  const KalmanLearnerConfig& config() const { return config_; }
  // Mean NIS over the updates so far (m when the filter is consistent); NaN before the first.
  double mean_nis() const;
  std::int64_t stability_projections() const { return projections_; }

  // Checkpoint hooks. shared_state() is identical on every rank. last_gain(i) is K of owned block
  // i from the last update that formed one (nullopt before). restore() sets theta (every rank
  // passes the same), the model's recurrent state and the shared state; restore_block() then
  // sets an owned block's mean, P (or variances) and counters: `id` must be owned by this rank.
  KalmanLearnerState shared_state() const;
  std::optional<Eigen::MatrixXd> last_gain(std::size_t i) const;
  void restore(const Eigen::VectorXd& theta, const RecurrentState& recurrent,
               const KalmanLearnerState& state);
  void restore_block(BlockId id, const Eigen::VectorXd& mean, const Eigen::MatrixXd& second_moment,
                     const FilterCounters& counters);

 private:
  // Where block b sits in theta.
  struct Slice {
    Index offset = 0;
    Index size = 0;
  };

  void build_blocks();
  // All ranks: the owners' updated means into every rank's theta (one all-gather).
  void gather_means(Eigen::VectorXd& theta) const;
  // H_b = d yhat / d theta[offset, offset + size), assembled from the model's group blocks.
  Eigen::MatrixXd jacobian_slice(const LinearizedPrediction& prediction, const Slice& slice) const;
  // Copies the local block means into theta (single process; sharded: theta already holds the
  // gathered means), sets it, projects to stability when due, and copies theta back.
  void write_back_means(Eigen::VectorXd& theta);

  KalmanLearnerConfig config_;
  std::unique_ptr<SequenceModel> model_;
  std::unique_ptr<Backend<double>> backend_;
  LearnerSharding sharding_;
  std::vector<Slice> slices_;       // every block, by global id
  std::vector<BlockShape> shapes_;  // every block, by global id
  std::vector<int> owners_;         // owner rank per global id
  std::vector<std::size_t> local_;  // global ids of the blocks this rank owns, ascending
  std::vector<ParameterBlock<double>> blocks_;  // blocks_[i] is block local_[i]
  DecoupledEkf<double> ekf_;
  ObservationNoise<double> noise_;

  std::vector<Tensor<double>> jacobians_;  // H_b of the owned blocks at the last predict()
  Eigen::VectorXd yhat_;                   // last prediction, normalised units
  bool predicted_ = false;
  std::int64_t updates_ = 0;
  std::int64_t projections_ = 0;
};

}  // namespace kwm
