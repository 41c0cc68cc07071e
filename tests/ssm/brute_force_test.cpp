// The filter and both smoothers against a dense joint-Gaussian computation, missing data, exact
// diffuse against large-variance initialisation, and model validation.
#include <cmath>
#include <limits>
#include <numbers>
#include <random>

#include <gtest/gtest.h>

#include "core/ssm/kalman_filter.hpp"
#include "core/ssm/smoother.hpp"

namespace kwm::ssm {
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// A small 2-state, 2-output model with an input and full (correlated) Q, R, P0.
LinearGaussianModel small_model() {
  LinearGaussianModel m;
  m.F = (Matrix(2, 2) << 0.9, 0.2, -0.1, 0.7).finished();
  m.B = (Matrix(2, 1) << 0.5, -0.3).finished();
  m.H = (Matrix(2, 2) << 1.0, 0.5, -0.4, 1.2).finished();
  m.Q = (Matrix(2, 2) << 0.3, 0.1, 0.1, 0.2).finished();
  m.R = (Matrix(2, 2) << 0.5, -0.2, -0.2, 0.8).finished();
  m.init = InitialState::known((Vector(2) << 1.0, -0.5).finished(),
                               (Matrix(2, 2) << 2.0, 0.3, 0.3, 1.0).finished());
  return m;
}

Matrix series(Index T, Index p, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Matrix y(T, p);
  for (Index t = 0; t < T; ++t) {
    for (Index i = 0; i < p; ++i) y(t, i) = normal(rng) + 0.3 * static_cast<double>(t);
  }
  return y;
}

// x = (x_0..x_{T-1}) and y stacked: x = A (x_0, w_0..w_{T-2}) + c, y = (I_T (x) H) x + v.
// Conditions the joint Gaussian on the observed entries of y with one dense solve.
struct DenseResult {
  Vector smoothed_mean;  // nT
  Matrix smoothed_cov;   // nT x nT
  double loglik = 0;
};

DenseResult dense_posterior(const LinearGaussianModel& m, const Matrix& y, const Matrix& u) {
  const Index T = y.rows(), n = m.state_dim(), p = m.obs_dim();
  Vector mu = Vector::Zero(n * T);
  Matrix cov = Matrix::Zero(n * T, n * T);
  // x_t = F x_{t-1} + B u_{t-1} + w_{t-1}: build the mean and covariance blockwise.
  mu.segment(0, n) = m.init.mean;
  cov.block(0, 0, n, n) = m.init.cov;
  for (Index t = 1; t < T; ++t) {
    mu.segment(t * n, n) = m.F * mu.segment((t - 1) * n, n) + m.B * u.row(t - 1).transpose();
    for (Index s = 0; s < t; ++s) {
      cov.block(t * n, s * n, n, n) = m.F * cov.block((t - 1) * n, s * n, n, n);
      cov.block(s * n, t * n, n, n) = cov.block(t * n, s * n, n, n).transpose();
    }
    cov.block(t * n, t * n, n, n) =
        m.F * cov.block((t - 1) * n, (t - 1) * n, n, n) * m.F.transpose() + m.Q;
  }
  std::vector<Index> rows;  // observed entries (t, i) -> t * p + i
  for (Index t = 0; t < T; ++t) {
    for (Index i = 0; i < p; ++i) {
      if (!std::isnan(y(t, i))) rows.push_back(t * p + i);
    }
  }
  const auto k = static_cast<Index>(rows.size());
  Matrix G = Matrix::Zero(k, n * T);  // observed y = G x + v
  Matrix Rv = Matrix::Zero(k, k);
  Vector yo(k);
  for (Index a = 0; a < k; ++a) {
    const Index t = rows[static_cast<std::size_t>(a)] / p,
                i = rows[static_cast<std::size_t>(a)] % p;
    G.block(a, t * n, 1, n) = m.H.row(i);
    yo(a) = y(t, i);
    for (Index b = 0; b < k; ++b) {
      const Index t2 = rows[static_cast<std::size_t>(b)] / p,
                  j = rows[static_cast<std::size_t>(b)] % p;
      if (t2 == t) Rv(a, b) = m.R(i, j);
    }
  }
  const Matrix S = G * cov * G.transpose() + Rv;
  const Eigen::LLT<Matrix> llt(S);
  const Vector e = yo - G * mu;
  DenseResult out;
  out.smoothed_mean = mu + cov * G.transpose() * llt.solve(e);
  out.smoothed_cov = cov - cov * G.transpose() * llt.solve(G * cov);
  const Matrix L = llt.matrixL();
  out.loglik = -0.5 * (static_cast<double>(k) * std::log(2 * std::numbers::pi) +
                       2 * L.diagonal().array().log().sum() + e.dot(llt.solve(e)));
  return out;
}

void expect_matches_dense(const LinearGaussianModel& m, const Matrix& y, const Matrix& u) {
  const Index n = m.state_dim();
  const FilterResult f = kalman_filter(m, y, u);
  const DenseResult d = dense_posterior(m, y, u);
  EXPECT_NEAR(f.loglik, d.loglik, 1e-9 * std::abs(d.loglik));
  for (const SmootherResult& s : {rts_smoother(m, f), backward_smoother(m, f)}) {
    for (Index t = 0; t < y.rows(); ++t) {
      const auto k = static_cast<std::size_t>(t);
      EXPECT_LT((s.means[k] - d.smoothed_mean.segment(t * n, n)).cwiseAbs().maxCoeff(), 1e-9)
          << "t=" << t;
      EXPECT_LT((s.covs[k] - d.smoothed_cov.block(t * n, t * n, n, n)).cwiseAbs().maxCoeff(), 1e-9)
          << "t=" << t;
    }
  }
  // The last filtered state is the last smoothed state.
  const auto last = static_cast<std::size_t>(y.rows() - 1);
  EXPECT_LT((f.filtered_means[last] - d.smoothed_mean.tail(n)).cwiseAbs().maxCoeff(), 1e-9);
}

TEST(BruteForce, FilterAndSmoothersMatchDenseJointGaussian) {
  const LinearGaussianModel m = small_model();
  m.validate();
  expect_matches_dense(m, series(8, 2, 1), series(8, 1, 2));
}

TEST(MissingData, NaNEntriesEqualConditioningOnTheObservedEntriesOnly) {
  const LinearGaussianModel m = small_model();
  Matrix y = series(9, 2, 3);
  y(2, 0) = kNaN;            // partially observed
  y(4, 0) = y(4, 1) = kNaN;  // all missing: predict only
  y(7, 1) = kNaN;
  expect_matches_dense(m, y, series(9, 1, 4));
  const FilterResult f = kalman_filter(m, y, series(9, 1, 4));
  EXPECT_EQ(f.n_missing, 4);
  EXPECT_EQ(f.n_obs, 14);
  EXPECT_EQ(f.filtered_means[4], f.predicted_means[4]);
  EXPECT_EQ(f.filtered_covs[4], f.predicted_covs[4]);
  EXPECT_EQ(f.loglik_terms[4], 0.0);
}

TEST(MissingData, NaNEqualsAModelWithoutThatObservationRow) {
  // y_2 has its first entry missing; the same step with H, R reduced to the second row gives
  // the same posterior and log-likelihood contribution.
  const LinearGaussianModel m = small_model();
  Matrix y = series(4, 2, 5);
  y(2, 0) = kNaN;
  const Matrix u = series(4, 1, 6);
  const FilterResult f = kalman_filter(m, y, u);
  const Gaussian prior{f.predicted_means[2], f.predicted_covs[2]};
  const Conditioned c = condition_on(prior, y.block(2, 1, 1, 1).transpose(), m.H.bottomRows(1),
                                     m.R.bottomRightCorner(1, 1));
  EXPECT_LT((c.posterior.mean - f.filtered_means[2]).cwiseAbs().maxCoeff(), 1e-14);
  EXPECT_LT((c.posterior.cov - f.filtered_covs[2]).cwiseAbs().maxCoeff(), 1e-14);
  EXPECT_DOUBLE_EQ(c.loglik, f.loglik_terms[2]);
}

// Exact diffuse vs large variance kappa: smoothed states agree to O(1/kappa) and
// loglik_kappa + (n_diffuse_obs / 2) log kappa -> diffuse loglik.
void expect_diffuse_limit(const LinearGaussianModel& exact, const Matrix& y, double tol) {
  const double kappa = 1e8;
  LinearGaussianModel approx = exact;
  approx.init.cov = exact.init.cov + kappa * exact.init.diffuse_cov;
  approx.init.diffuse_cov.setZero();
  const FilterResult fe = kalman_filter(exact, y);
  const FilterResult fa = kalman_filter(approx, y);
  EXPECT_EQ(fa.diffuse_steps, 0);
  EXPECT_NEAR(fa.loglik + 0.5 * static_cast<double>(fe.n_diffuse_obs) * std::log(kappa), fe.loglik,
              tol);
  const SmootherResult se = smoother(exact, fe);
  const SmootherResult sa = smoother(approx, fa);
  for (std::size_t t = 0; t < se.means.size(); ++t) {
    EXPECT_LT((se.means[t] - sa.means[t]).cwiseAbs().maxCoeff(), tol) << "t=" << t;
    EXPECT_LT((se.covs[t] - sa.covs[t]).cwiseAbs().maxCoeff(), tol) << "t=" << t;
  }
}

TEST(ExactDiffuse, MultivariateMatchesLargeVarianceLimit) {
  LinearGaussianModel m = small_model();
  m.B.resize(0, 0);
  m.init = InitialState::exact_diffuse(2);
  Matrix y = series(7, 2, 7);
  y(0, 1) = kNaN;  // first step only partially observed: the diffuse phase lasts two steps
  expect_diffuse_limit(m, y, 1e-5);
  EXPECT_EQ(kalman_filter(m, y).diffuse_steps, 2);
}

TEST(ExactDiffuse, PartlyDiffuseStateWithZeroFinfObservation) {
  // State 0 diffuse, state 1 known; y_0 observes only state 1 (f_inf = 0 branch), y_1 both.
  LinearGaussianModel m;
  m.F = (Matrix(2, 2) << 1.0, 0.0, 0.0, 0.6).finished();
  m.H = (Matrix(2, 2) << 1.0, 0.0, 0.0, 1.0).finished();
  m.Q = (Matrix(2, 2) << 0.4, 0.0, 0.0, 1.0).finished();
  m.R = (Matrix(2, 2) << 0.7, 0.1, 0.1, 0.3).finished();
  m.init.mean = (Vector(2) << 0.0, 0.5).finished();
  m.init.cov = (Matrix(2, 2) << 0.0, 0.0, 0.0, 1.5).finished();
  m.init.diffuse_cov = (Matrix(2, 2) << 1.0, 0.0, 0.0, 0.0).finished();
  m.validate();
  Matrix y = series(6, 2, 8);
  y(0, 0) = kNaN;
  y(1, 1) = kNaN;
  const FilterResult f = kalman_filter(m, y);
  EXPECT_EQ(f.diffuse_steps, 2);
  EXPECT_EQ(f.n_diffuse_obs, 1);
  expect_diffuse_limit(m, y, 1e-5);
}

TEST(Validation, ShapesAndDefiniteness) {
  LinearGaussianModel m = small_model();
  m.validate();
  auto message = [](const LinearGaussianModel& bad) {
    try {
      bad.validate();
    } catch (const ModelError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  LinearGaussianModel bad = m;
  bad.F = Matrix::Identity(3, 2);
  EXPECT_EQ(message(bad), "'F' must be a non-empty square matrix; got 3x2");
  bad = m;
  bad.Q = Matrix::Identity(3, 3);
  EXPECT_EQ(message(bad), "'Q' must be a 2x2 matrix; got 3x3");
  bad = m;
  bad.H = Matrix::Identity(2, 3);
  EXPECT_EQ(message(bad), "'H' must be a px2 matrix with p >= 1; got 2x3");
  bad = m;
  bad.R(0, 1) = 0.1;
  EXPECT_EQ(message(bad), "'R' must be symmetric");
  bad = m;
  bad.R = (Matrix(2, 2) << 1.0, 2.0, 2.0, 1.0).finished();
  EXPECT_EQ(message(bad), "'R' must be positive definite (Cholesky factorisation failed)");
  bad = m;
  bad.Q = -Matrix::Identity(2, 2);
  EXPECT_EQ(message(bad), "'Q' must be positive semi-definite");
  bad = m;
  bad.Q.setZero();  // a deterministic transition is allowed
  EXPECT_EQ(message(bad), "no error");
  bad = m;
  bad.init.mean = Vector::Zero(3);
  EXPECT_EQ(message(bad), "'x0' must be a vector of length 2; got 3");
}

TEST(Filter, DataShapeMismatchIsAModelError) {
  const LinearGaussianModel m = small_model();
  EXPECT_THROW(kalman_filter(m, Matrix::Zero(4, 3), Matrix::Zero(4, 1)), ModelError);
  EXPECT_THROW(kalman_filter(m, Matrix::Zero(4, 2), Matrix::Zero(3, 1)), ModelError);
}

}  // namespace
}  // namespace kwm::ssm
