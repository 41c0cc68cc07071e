#include "core/lm/learners/ensemble_draws.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/lm/learners/ensemble_kalman_update.hpp"
#include "core/lm/learners/ensemble_learner.hpp"

namespace kwm::lm {

Eigen::MatrixXd member_draws(std::uint64_t seed, RandomPurpose purpose, std::uint64_t step,
                             Eigen::Index rows, Eigen::Index members, double std, bool antithetic) {
  if (antithetic && members % 2 != 0)
    throw std::invalid_argument("antithetic member draws need an even member count; got " +
                                std::to_string(members));
  Eigen::MatrixXd out(rows, members);
  const Eigen::Index stride_j = antithetic ? 2 : 1;  // the drawn columns
  const auto draw = [&](Eigen::Index first, Eigen::Index stride) {
    for (Eigen::Index j = first * stride_j; j < members; j += stride * stride_j) {
      out.col(j) =
          normal_vector(stream_seed(seed, purpose, step, static_cast<std::uint64_t>(j)), rows, std);
      if (antithetic) out.col(j + 1) = -out.col(j);
    }
  };
  const Eigen::Index drawn = members / stride_j;
  const auto threads = static_cast<Eigen::Index>(
      std::min<unsigned>(std::max(std::thread::hardware_concurrency(), 1u),
                         static_cast<unsigned>(std::max<Eigen::Index>(drawn, 1))));
  if (threads <= 1 || rows * members < 65536) {
    draw(0, 1);
    return out;
  }
  std::vector<std::thread> pool;
  for (Eigen::Index t = 1; t < threads; ++t) pool.emplace_back(draw, t, threads);
  draw(0, threads);
  for (auto& t : pool) t.join();
  return out;
}

Eigen::MatrixXd initial_members(const EnsembleConfig& config, std::uint64_t seed,
                                const Eigen::VectorXd& origin) {
  Eigen::MatrixXd members = member_draws(seed, RandomPurpose::initial_deviation, 0, origin.size(),
                                         config.members, config.initial_std, config.antithetic);
  members.colwise() += origin;
  return members;
}

void forecast_members(Eigen::MatrixXd& members, const EnsembleConfig& config, std::uint64_t seed,
                      std::int64_t step) {
  inflate_ensemble(members, config.inflation);
  const double q = process_noise_std(config, step);
  if (q <= 0.0) return;
  Eigen::MatrixXd noise =
      member_draws(seed, RandomPurpose::process_noise, static_cast<std::uint64_t>(step),
                   members.rows(), members.cols(), q, config.antithetic);
  if (config.process_noise_mode == EnsembleConfig::ProcessNoiseMode::centered)
    noise.colwise() -= noise.rowwise().mean();
  members += noise;
}

EnsembleObservations ensemble_observations(const Eigen::MatrixXd& predictions,
                                           const EnsembleConfig& config, std::uint64_t seed,
                                           std::int64_t step) {
  const Eigen::Index m = predictions.rows(), members = predictions.cols();
  const bool probability = config.observation == EnsembleObservation::target_probability;
  EnsembleObservations out;
  out.noise.resize(m);
  if (probability) {
    const Eigen::ArrayXd pbar = predictions.rowwise().mean().array();
    out.noise = (config.observation_noise * pbar * (1.0 - pbar) + config.noise_floor).matrix();
  } else {
    out.noise.setConstant(config.observation_noise);
  }
  out.values = Eigen::MatrixXd::Constant(m, members, probability ? 1.0 : 0.0);
  if (config.perturb_observations && m > 0) {
    const Eigen::VectorXd std = out.noise.cwiseSqrt();
    const Eigen::MatrixXd draws =
        member_draws(seed, RandomPurpose::observation_perturbation,
                     static_cast<std::uint64_t>(step), m, members, 1.0, config.antithetic);
    for (Eigen::Index j = 0; j < members; ++j) out.values.col(j) += std.cwiseProduct(draws.col(j));
  }
  return out;
}

}  // namespace kwm::lm
