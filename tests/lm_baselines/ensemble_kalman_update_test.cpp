// The ensemble-space EKI analysis on a linear-Gaussian forward map y = H theta + v,
// v ~ N(0, R), prior N(m0, P0) (ALGORITHMS.md section 11, item 7): against the Kalman
// posterior mean m0 + P0 H^T (H P0 H^T + R)^-1 (y - H m0) and covariance.
#include "core/lm/learners/ensemble_kalman_update.hpp"

#include <gtest/gtest.h>

#include <Eigen/Cholesky>
#include <Eigen/QR>
#include <random>
#include <stdexcept>

namespace kwm::lm {
namespace {

Eigen::MatrixXd gaussian(Eigen::Index rows, Eigen::Index cols, std::mt19937_64& engine) {
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::MatrixXd a(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) a(i, j) = normal(engine);
  return a;
}

struct LinearGaussian {
  Eigen::MatrixXd h;   // m x n
  Eigen::VectorXd r;   // m, diagonal of R
  Eigen::VectorXd m0;  // n
  Eigen::MatrixXd p0;  // n x n
  Eigen::VectorXd y;   // m
  Eigen::VectorXd post_mean;
  Eigen::MatrixXd post_cov;
};

LinearGaussian problem(Eigen::Index n, Eigen::Index m, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  LinearGaussian p;
  p.h = gaussian(m, n, engine);
  p.r = Eigen::VectorXd::LinSpaced(m, 0.5, 1.5);
  p.m0 = gaussian(n, 1, engine);
  const Eigen::MatrixXd a = gaussian(n, n, engine);
  p.p0 = a * a.transpose() / static_cast<double>(n) + Eigen::MatrixXd::Identity(n, n);
  p.y = gaussian(m, 1, engine);
  // Closed form through Cholesky solves of S = H P0 H^T + R.
  Eigen::MatrixXd s = p.h * p.p0 * p.h.transpose();
  s.diagonal() += p.r;
  const Eigen::LLT<Eigen::MatrixXd> chol(s);
  const Eigen::MatrixXd ph = p.p0 * p.h.transpose();  // n x m
  p.post_mean = p.m0 + ph * chol.solve(p.y - p.h * p.m0);
  p.post_cov = p.p0 - ph * chol.solve(ph.transpose());
  return p;
}

Eigen::MatrixXd forward_map(const LinearGaussian& p, const Eigen::MatrixXd& members) {
  return p.h * members;
}

TEST(EnsembleKalmanUpdate, EnsembleWithExactPriorCovarianceGivesThePosteriorMean) {
  // Deviations built so that their sample covariance is exactly P0 (J = 6 > n = 4): the
  // ensemble-space update without perturbations then moves the mean exactly to the Kalman
  // posterior mean.
  const Eigen::Index n = 4, m = 3, members = 6;
  const LinearGaussian p = problem(n, m, 11);
  std::mt19937_64 engine(5);
  Eigen::MatrixXd basis(members, n + 1);
  basis.col(0).setOnes();
  basis.rightCols(n) = gaussian(members, n, engine);
  const Eigen::MatrixXd q = Eigen::HouseholderQR<Eigen::MatrixXd>(basis).householderQ() *
                            Eigen::MatrixXd::Identity(members, n + 1);
  // Columns 1..n of q: orthonormal and orthogonal to the ones vector.
  const Eigen::MatrixXd l = p.p0.llt().matrixL();
  Eigen::MatrixXd theta =
      (std::sqrt(static_cast<double>(members - 1)) * l * q.rightCols(n).transpose()).colwise() +
      p.m0;
  const Eigen::VectorXd mean0 = theta.rowwise().mean();
  ASSERT_LT((mean0 - p.m0).norm(), 1e-12);
  const Eigen::MatrixXd dev = theta.colwise() - mean0;
  ASSERT_LT((dev * dev.transpose() / (members - 1.0) - p.p0).norm(), 1e-12);

  const Eigen::MatrixXd observations = p.y.replicate(1, members);
  const EnsembleAnalysis a = ensemble_analysis(forward_map(p, theta), observations, p.r);
  ASSERT_TRUE(a.ok);
  apply_ensemble_analysis(theta, a.weights);
  EXPECT_LT((theta.rowwise().mean() - p.post_mean).norm(), 1e-12 * (1 + p.post_mean.norm()));
}

TEST(EnsembleKalmanUpdate, LargeEnsembleApproachesTheKalmanPosterior) {
  // Stochastic EKI (prior draws, perturbed observations) assimilating three batches of
  // observations one after another, as the learner does step by step: the ensemble mean and
  // covariance approach the posterior given all the data. Monte Carlo error ~ 1/sqrt(J).
  const Eigen::Index n = 3, m = 2, members = 2000;
  const LinearGaussian first = problem(n, m, 21);
  std::mt19937_64 engine(8);
  // Three observation operators and data; the posterior of all of them by one joint solve.
  std::vector<Eigen::MatrixXd> hs = {first.h, gaussian(m, n, engine), gaussian(m, n, engine)};
  std::vector<Eigen::VectorXd> ys = {first.y, gaussian(m, 1, engine), gaussian(m, 1, engine)};
  Eigen::MatrixXd h_all(3 * m, n);
  Eigen::VectorXd y_all(3 * m), r_all(3 * m);
  for (int k = 0; k < 3; ++k) {
    h_all.middleRows(k * m, m) = hs[static_cast<std::size_t>(k)];
    y_all.segment(k * m, m) = ys[static_cast<std::size_t>(k)];
    r_all.segment(k * m, m) = first.r;
  }
  Eigen::MatrixXd s = h_all * first.p0 * h_all.transpose();
  s.diagonal() += r_all;
  const Eigen::LLT<Eigen::MatrixXd> chol(s);
  const Eigen::MatrixXd ph = first.p0 * h_all.transpose();
  const Eigen::VectorXd post_mean = first.m0 + ph * chol.solve(y_all - h_all * first.m0);
  const Eigen::MatrixXd post_cov = first.p0 - ph * chol.solve(ph.transpose());

  const Eigen::MatrixXd l = first.p0.llt().matrixL();
  Eigen::MatrixXd theta = (l * gaussian(n, members, engine)).colwise() + first.m0;
  const Eigen::VectorXd r_std = first.r.cwiseSqrt();
  for (int k = 0; k < 3; ++k) {
    const Eigen::MatrixXd eps = r_std.asDiagonal() * gaussian(m, members, engine);
    const Eigen::MatrixXd observations = eps.colwise() + ys[static_cast<std::size_t>(k)];
    const EnsembleAnalysis a =
        ensemble_analysis(hs[static_cast<std::size_t>(k)] * theta, observations, first.r);
    ASSERT_TRUE(a.ok);
    apply_ensemble_analysis(theta, a.weights);
  }
  const Eigen::VectorXd mean = theta.rowwise().mean();
  const Eigen::MatrixXd dev = theta.colwise() - mean;
  const Eigen::MatrixXd cov = dev * dev.transpose() / (members - 1.0);
  // Mean error in posterior standard deviations: 5 / sqrt(J) ~ 0.035 is a 5-sigma bound.
  const Eigen::VectorXd z = (mean - post_mean).cwiseQuotient(post_cov.diagonal().cwiseSqrt());
  EXPECT_LT(z.cwiseAbs().maxCoeff(), 5.0 / std::sqrt(static_cast<double>(members)));
  EXPECT_LT((cov - post_cov).norm() / post_cov.norm(), 0.05);
  // And it moved: the prior mean is many standard errors away from the posterior mean.
  EXPECT_GT(
      ((first.m0 - post_mean).cwiseQuotient(post_cov.diagonal().cwiseSqrt())).cwiseAbs().maxCoeff(),
      0.5);
}

TEST(EnsembleKalmanUpdate, EnsembleAndObservationSpacesGiveTheSameWeights) {
  std::mt19937_64 engine(17);
  for (const auto& [m, members] : {std::pair<Eigen::Index, Eigen::Index>{9, 5}, {4, 12}}) {
    const Eigen::MatrixXd predictions = gaussian(m, members, engine);
    const Eigen::MatrixXd observations = gaussian(m, members, engine);
    const Eigen::VectorXd r = Eigen::VectorXd::LinSpaced(m, 0.3, 2.0);
    const EnsembleAnalysis e =
        ensemble_analysis(predictions, observations, r, AnalysisSpace::ensemble);
    const EnsembleAnalysis o =
        ensemble_analysis(predictions, observations, r, AnalysisSpace::observation);
    ASSERT_TRUE(e.ok && o.ok);
    EXPECT_LT((e.weights - o.weights).norm(), 1e-12 * (1 + e.weights.norm()));
    // And both equal the textbook form Y^T (Y Y^T + (J-1) R)^-1 D through a Cholesky solve.
    const Eigen::MatrixXd y = predictions.colwise() - predictions.rowwise().mean();
    Eigen::MatrixXd s = y * y.transpose();
    s.diagonal() += (members - 1.0) * r;
    const Eigen::MatrixXd textbook =
        y.transpose() * Eigen::LLT<Eigen::MatrixXd>(s).solve(observations - predictions);
    EXPECT_LT((e.weights - textbook).norm(), 1e-12 * (1 + textbook.norm()));
  }
}

TEST(EnsembleKalmanUpdate, InflationKeepsTheMeanAndScalesDeviations) {
  std::mt19937_64 engine(3);
  Eigen::MatrixXd theta = gaussian(5, 7, engine);
  const Eigen::VectorXd mean = theta.rowwise().mean();
  const Eigen::MatrixXd dev = theta.colwise() - mean;
  inflate_ensemble(theta, 1.5);
  EXPECT_LT((theta.rowwise().mean() - mean).norm(), 1e-14);
  EXPECT_LT(((theta.colwise() - mean) - 1.5 * dev).norm(), 1e-13);
  EXPECT_THROW(inflate_ensemble(theta, 0.0), std::invalid_argument);
}

TEST(EnsembleKalmanUpdate, NonFiniteInputIsRefusedAndShapesAreChecked) {
  Eigen::MatrixXd predictions = Eigen::MatrixXd::Ones(3, 4);
  predictions(1, 2) = std::numeric_limits<double>::quiet_NaN();
  const Eigen::MatrixXd observations = Eigen::MatrixXd::Zero(3, 4);
  const Eigen::VectorXd r = Eigen::VectorXd::Ones(3);
  const EnsembleAnalysis a = ensemble_analysis(predictions, observations, r);
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.weights.size(), 0);
  EXPECT_THROW(ensemble_analysis(Eigen::MatrixXd::Ones(3, 1), Eigen::MatrixXd::Zero(3, 1), r),
               std::invalid_argument);
  EXPECT_THROW(ensemble_analysis(Eigen::MatrixXd::Ones(3, 4), Eigen::MatrixXd::Zero(2, 4), r),
               std::invalid_argument);
  EXPECT_THROW(ensemble_analysis(Eigen::MatrixXd::Ones(3, 4), observations, -r),
               std::invalid_argument);
  Eigen::MatrixXd theta = Eigen::MatrixXd::Ones(2, 4);
  EXPECT_THROW(apply_ensemble_analysis(theta, Eigen::MatrixXd::Zero(3, 3)), std::invalid_argument);
}

}  // namespace
}  // namespace kwm::lm
