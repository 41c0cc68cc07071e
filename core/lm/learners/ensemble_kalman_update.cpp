// Ensemble-space EKI analysis: two J x J products and one J x J Cholesky solve.
#include "core/lm/learners/ensemble_kalman_update.hpp"

#include <Eigen/Cholesky>
#include <algorithm>
#include <stdexcept>
#include <string>

namespace kwm::lm {

EnsembleAnalysis ensemble_analysis(const Eigen::MatrixXd& predictions,
                                   const Eigen::MatrixXd& observations,
                                   const Eigen::VectorXd& noise_variance, AnalysisSpace space) {
  const Eigen::Index m = predictions.rows(), members = predictions.cols();
  if (members < 2)
    throw std::invalid_argument("ensemble analysis needs at least 2 members; got " +
                                std::to_string(members));
  if (observations.rows() != m || observations.cols() != members || noise_variance.size() != m)
    throw std::invalid_argument("ensemble analysis: predictions are " + std::to_string(m) + " x " +
                                std::to_string(members) + ", observations " +
                                std::to_string(observations.rows()) + " x " +
                                std::to_string(observations.cols()) + ", noise variances " +
                                std::to_string(noise_variance.size()));
  if (!(noise_variance.array() > 0.0).all())
    throw std::invalid_argument("ensemble analysis: observation noise variances must be > 0");

  EnsembleAnalysis out;
  if (!predictions.allFinite() || !observations.allFinite()) return out;
  // Whitened deviations R^-1/2 Y and misfits R^-1/2 D, so that both products are plain Gram
  // matrices.
  const Eigen::VectorXd whiten = noise_variance.cwiseSqrt().cwiseInverse();
  const Eigen::VectorXd mean = predictions.rowwise().mean();
  const Eigen::MatrixXd y = whiten.asDiagonal() * (predictions.colwise() - mean);  // m x J
  const Eigen::MatrixXd d = whiten.asDiagonal() * (observations - predictions);

  const double spread = static_cast<double>(members - 1);
  if (space == AnalysisSpace::automatic)
    space = members <= m ? AnalysisSpace::ensemble : AnalysisSpace::observation;
  if (space == AnalysisSpace::ensemble) {
    Eigen::MatrixXd g = y.transpose() * y;  // J x J, eigenvalues >= J - 1
    g.diagonal().array() += spread;
    const Eigen::LLT<Eigen::MatrixXd> chol(g);
    if (chol.info() != Eigen::Success) return out;
    out.weights = chol.solve(y.transpose() * d);
  } else {
    Eigen::MatrixXd s = y * y.transpose();  // m x m, eigenvalues >= J - 1
    s.diagonal().array() += spread;
    const Eigen::LLT<Eigen::MatrixXd> chol(s);
    if (chol.info() != Eigen::Success) return out;
    out.weights = y.transpose() * chol.solve(d);
  }
  if (!out.weights.allFinite()) {
    out.weights.resize(0, 0);
    return out;
  }
  out.normalized_misfit =
      d.colwise().squaredNorm().mean() / static_cast<double>(std::max<Eigen::Index>(m, 1));
  out.ok = true;
  return out;
}

void apply_ensemble_analysis(Eigen::MatrixXd& members, const Eigen::MatrixXd& weights) {
  if (weights.rows() != members.cols() || weights.cols() != members.cols())
    throw std::invalid_argument("ensemble analysis: weights are " + std::to_string(weights.rows()) +
                                " x " + std::to_string(weights.cols()) + " for " +
                                std::to_string(members.cols()) + " members");
  const Eigen::VectorXd mean = members.rowwise().mean();
  const Eigen::MatrixXd deviations = members.colwise() - mean;
  members.noalias() += deviations * weights;
}

void inflate_ensemble(Eigen::MatrixXd& members, double factor) {
  if (!(factor > 0.0)) throw std::invalid_argument("ensemble inflation factor must be > 0");
  if (factor == 1.0) return;
  const Eigen::VectorXd mean = members.rowwise().mean();
  members = (factor * (members.colwise() - mean)).colwise() + mean;
}

}  // namespace kwm::lm
