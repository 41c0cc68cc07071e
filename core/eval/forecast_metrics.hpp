// Streaming one-step-ahead forecast metrics over (Prediction, y) pairs: MSE, MAE, Gaussian NLL
// and coverage of the central 90% interval, per output channel and pooled over all channels.
// Missing values (NaN in y) are skipped; predictions with a NaN mean are counted, not scored.
#pragma once

#include <Eigen/Core>
#include <nlohmann/json_fwd.hpp>
#include <utility>
#include <vector>

#include "core/learners/sequence_learner.hpp"

namespace kwm::eval {

// z such that P(|Z| <= z) = 0.9 for a standard normal Z (the 0.95 quantile).
inline constexpr double kCentral90Quantile = 1.6448536269514722;

// Metrics of one channel (or of all channels pooled). Averages are over `count` scored scalars;
// with count = 0 they are NaN.
struct ChannelMetrics {
  long long count = 0;        // scored scalars: y observed and the prediction mean finite
  long long unpredicted = 0;  // y observed but the prediction mean NaN (e.g. persistence at t=0)
  double mse = 0;             // mean (y - mean)^2
  double mae = 0;             // mean |y - mean|
  double nll = 0;             // mean 0.5 * (log(2 pi var) + (y - mean)^2 / var), natural log
  double coverage90 = 0;      // fraction with |y - mean| <= 1.6449 sqrt(var)
};

struct ForecastMetrics {
  std::vector<ChannelMetrics> per_channel;
  ChannelMetrics overall;  // pooled over every scored scalar (not the mean of channel means)
};

// nlohmann::json j = metrics; gives {"overall": {...}, "per_channel": [{...}, ...]}; NaN
// averages (count 0) become null.
void to_json(nlohmann::json& j, const ChannelMetrics& metrics);
void to_json(nlohmann::json& j, const ForecastMetrics& metrics);

class ForecastMetricsAccumulator {
 public:
  // The running sums of one channel: what a checkpoint stores so scoring continues on resume.
  struct Sums {
    long long count = 0, unpredicted = 0;
    double squared_error = 0, absolute_error = 0, nll = 0;
    long long covered = 0;
  };

  explicit ForecastMetricsAccumulator(Eigen::Index channels);
  // Continues from saved sums (one per channel).
  explicit ForecastMetricsAccumulator(std::vector<Sums> sums) : sums_(std::move(sums)) {}

  // Scores one step. Throws std::invalid_argument on a size mismatch, and when a scored entry
  // has a variance that is not finite and positive (the NLL would be meaningless).
  void add(const Prediction& prediction, const Eigen::VectorXd& y);

  Eigen::Index channels() const { return static_cast<Eigen::Index>(sums_.size()); }
  ForecastMetrics result() const;
  const std::vector<Sums>& sums() const { return sums_; }

 private:
  static ChannelMetrics averages(const Sums& sums);
  std::vector<Sums> sums_;
};

}  // namespace kwm::eval
