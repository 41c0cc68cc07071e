// Streaming forecast metrics: per-channel sums, averaged on demand.
#include "core/eval/forecast_metrics.hpp"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numbers>
#include <stdexcept>
#include <string>

namespace kwm::eval {

namespace {

nlohmann::json number_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

}  // namespace

void to_json(nlohmann::json& j, const ChannelMetrics& metrics) {
  j = nlohmann::json{{"count", metrics.count},
                     {"unpredicted", metrics.unpredicted},
                     {"mse", number_or_null(metrics.mse)},
                     {"mae", number_or_null(metrics.mae)},
                     {"nll", number_or_null(metrics.nll)},
                     {"coverage90", number_or_null(metrics.coverage90)}};
}

void to_json(nlohmann::json& j, const ForecastMetrics& metrics) {
  j = nlohmann::json{{"overall", metrics.overall}, {"per_channel", metrics.per_channel}};
}

ForecastMetricsAccumulator::ForecastMetricsAccumulator(Eigen::Index channels) {
  if (channels < 1) {
    throw std::invalid_argument("forecast metrics need at least one output channel; got " +
                                std::to_string(channels));
  }
  sums_.resize(static_cast<std::size_t>(channels));
}

void ForecastMetricsAccumulator::add(const Prediction& prediction, const Eigen::VectorXd& y) {
  const Eigen::Index m = channels();
  if (y.size() != m || prediction.mean.size() != m || prediction.variance.size() != m) {
    throw std::invalid_argument("forecast metrics: expected " + std::to_string(m) +
                                " channels; got y " + std::to_string(y.size()) +
                                ", prediction mean " + std::to_string(prediction.mean.size()) +
                                ", variance " + std::to_string(prediction.variance.size()));
  }
  const double log_two_pi = std::log(2.0 * std::numbers::pi);
  for (Eigen::Index i = 0; i < m; ++i) {
    if (std::isnan(y(i))) continue;  // missing observation: nothing to score
    Sums& s = sums_[static_cast<std::size_t>(i)];
    const double mean = prediction.mean(i);
    if (std::isnan(mean)) {
      ++s.unpredicted;
      continue;
    }
    const double var = prediction.variance(i);
    if (!(std::isfinite(var) && var > 0)) {
      throw std::invalid_argument("forecast metrics: predictive variance of channel " +
                                  std::to_string(i) + " must be finite and positive; got " +
                                  std::to_string(var));
    }
    const double e = y(i) - mean;
    ++s.count;
    s.squared_error += e * e;
    s.absolute_error += std::abs(e);
    s.nll += 0.5 * (log_two_pi + std::log(var) + e * e / var);
    if (std::abs(e) <= kCentral90Quantile * std::sqrt(var)) ++s.covered;
  }
}

ChannelMetrics ForecastMetricsAccumulator::averages(const Sums& sums) {
  ChannelMetrics out;
  out.count = sums.count;
  out.unpredicted = sums.unpredicted;
  if (sums.count == 0) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    out.mse = out.mae = out.nll = out.coverage90 = nan;
    return out;
  }
  const double n = static_cast<double>(sums.count);
  out.mse = sums.squared_error / n;
  out.mae = sums.absolute_error / n;
  out.nll = sums.nll / n;
  out.coverage90 = static_cast<double>(sums.covered) / n;
  return out;
}

ForecastMetrics ForecastMetricsAccumulator::result() const {
  ForecastMetrics out;
  Sums pooled;
  for (const Sums& s : sums_) {
    out.per_channel.push_back(averages(s));
    pooled.count += s.count;
    pooled.unpredicted += s.unpredicted;
    pooled.squared_error += s.squared_error;
    pooled.absolute_error += s.absolute_error;
    pooled.nll += s.nll;
    pooled.covered += s.covered;
  }
  out.overall = averages(pooled);
  return out;
}

}  // namespace kwm::eval
