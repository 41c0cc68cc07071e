// The analysis step of ensemble Kalman inversion (Kovachki & Stuart 2019; ALGORITHMS.md 5(d)) in
// ensemble space, for any forward map. With members theta_j (columns of Theta, n x J), their
// predictions yhat_j (m x J), deviations Th = Theta - mean, Y = Yhat - mean, and diagonal R:
//   theta_j += Th Y^T (Y Y^T + (J-1) R)^-1 (y + eps_j - yhat_j)
//            = Th (Y^T R^-1 Y + (J-1) I)^-1 Y^T R^-1 (y + eps_j - yhat_j)     (push-through)
// so the whole update is Theta += Th W with the J x J weight matrix
//   W = G^-1 Y^T R^-1 D,  G = Y^T R^-1 Y + (J-1) I  (SPD, eigenvalues >= J-1; Cholesky solve),
// D = [y + eps_j - yhat_j]. Only J x J and J x m quantities are needed by whoever computes W.
// When m < J (large ensembles on small problems) the same W is computed in observation space,
//   W = Y^T R^-1/2 (R^-1/2 Y Y^T R^-1/2 + (J-1) I)^-1 R^-1/2 D   (m x m Cholesky solve),
// which is the identity above read the other way; the language-model learner has m >= J.
#pragma once

#include <Eigen/Core>

namespace kwm::lm {

struct EnsembleAnalysis {
  Eigen::MatrixXd weights;  // W, J x J
  bool ok = false;          // false: a non-finite input or G failed to factor; W is empty
  // Mean over members of the normalised misfit d_j^T R^-1 d_j / m before the update (about
  // 1 + spread/R when the ensemble and R are consistent); a health figure for the log.
  double normalized_misfit = 0.0;
};

// Which SPD matrix is factored: automatic = the smaller of the two (ensemble when J <= m).
enum class AnalysisSpace { automatic, ensemble, observation };

// predictions: m x J (column j = yhat_j); observations: m x J (column j = y + eps_j);
// noise_variance: m (diagonal of R, > 0). Throws std::invalid_argument on shape mismatch,
// J < 2 or a non-positive variance.
EnsembleAnalysis ensemble_analysis(const Eigen::MatrixXd& predictions,
                                   const Eigen::MatrixXd& observations,
                                   const Eigen::VectorXd& noise_variance,
                                   AnalysisSpace space = AnalysisSpace::automatic);

// members (n x J) += (members - mean) * weights. Throws std::invalid_argument on shape mismatch.
void apply_ensemble_analysis(Eigen::MatrixXd& members, const Eigen::MatrixXd& weights);

// Multiplicative inflation: theta_j <- mean + factor (theta_j - mean).
void inflate_ensemble(Eigen::MatrixXd& members, double factor);

}  // namespace kwm::lm
