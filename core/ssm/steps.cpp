// Predict and measurement-update steps of the linear-Gaussian filter.
#include "core/ssm/steps.hpp"

#include <cmath>
#include <numbers>

namespace kwm::ssm {

namespace {
const double kLog2Pi = std::log(2.0 * std::numbers::pi);
}

Gaussian predict(const Gaussian& filtered, const Matrix& F, const Vector& Bu, const Matrix& Q) {
  Gaussian next;
  next.mean = F * filtered.mean;
  if (Bu.size() > 0) next.mean += Bu;
  next.cov = symmetrized(F * filtered.cov * F.transpose() + Q);
  return next;
}

std::vector<Index> observed_rows(const Vector& y) {
  std::vector<Index> rows;
  for (Index i = 0; i < y.size(); ++i) {
    if (!std::isnan(y[i])) rows.push_back(i);
  }
  return rows;
}

Vector select_rows(const Vector& y, const std::vector<Index>& rows) {
  Vector out(static_cast<Index>(rows.size()));
  for (std::size_t i = 0; i < rows.size(); ++i) out[static_cast<Index>(i)] = y[rows[i]];
  return out;
}

Matrix select_rows(const Matrix& h, const std::vector<Index>& rows) {
  Matrix out(static_cast<Index>(rows.size()), h.cols());
  for (std::size_t i = 0; i < rows.size(); ++i) out.row(static_cast<Index>(i)) = h.row(rows[i]);
  return out;
}

Matrix select_block(const Matrix& r, const std::vector<Index>& rows) {
  const auto m = static_cast<Index>(rows.size());
  Matrix out(m, m);
  for (Index i = 0; i < m; ++i) {
    for (Index j = 0; j < m; ++j)
      out(i, j) = r(rows[static_cast<std::size_t>(i)], rows[static_cast<std::size_t>(j)]);
  }
  return out;
}

Conditioned condition_on(const Gaussian& prior, const Vector& y, const Matrix& H, const Matrix& R) {
  Conditioned out;
  const Matrix U = prior.cov * H.transpose();  // P H^T
  const Matrix S = symmetrized(H * U + R);
  out.innovation_factor = SpdFactor(S, "innovation covariance S = H P H^T + R");
  out.innovation = y - H * prior.mean;
  out.gain = out.innovation_factor.solve_right(U);
  out.posterior.mean = prior.mean + out.gain * out.innovation;
  const Index n = prior.mean.size();
  const Matrix I_KH = Matrix::Identity(n, n) - out.gain * H;
  out.posterior.cov =
      symmetrized(I_KH * prior.cov * I_KH.transpose() + out.gain * R * out.gain.transpose());
  out.loglik = -0.5 * (static_cast<double>(y.size()) * kLog2Pi + out.innovation_factor.log_det() +
                       out.innovation_factor.mahalanobis(out.innovation));
  return out;
}

DiffuseScalarUpdate condition_on_diffuse_scalar(DiffuseGaussian& state, const Vector& z, double y,
                                                double noise_var) {
  DiffuseScalarUpdate u;
  u.z = z;
  const Vector m_inf = state.diffuse_cov * z;
  const Vector m_star = state.cov * z;
  u.f_inf = z.dot(m_inf);
  u.f_star = z.dot(m_star) + noise_var;
  u.innovation = y - z.dot(state.mean);
  if (u.f_inf > kDiffuseTolerance) {
    // Durbin & Koopman (2012) eq. 5.12-5.13 for a scalar observation.
    u.diffuse = true;
    u.k0 = m_inf / u.f_inf;
    u.k1 = m_star / u.f_inf - m_inf * (u.f_star / (u.f_inf * u.f_inf));
    state.mean += u.k0 * u.innovation;
    state.cov =
        symmetrized(state.cov + m_inf * m_inf.transpose() * (u.f_star / (u.f_inf * u.f_inf)) -
                    (m_star * m_inf.transpose() + m_inf * m_star.transpose()) / u.f_inf);
    state.diffuse_cov = symmetrized(state.diffuse_cov - m_inf * m_inf.transpose() / u.f_inf);
    u.loglik = -0.5 * (kLog2Pi + std::log(u.f_inf));
  } else if (u.f_star > 0) {
    u.k0 = m_star / u.f_star;
    state.mean += u.k0 * u.innovation;
    state.cov = symmetrized(state.cov - m_star * m_star.transpose() / u.f_star);
    u.loglik = -0.5 * (kLog2Pi + std::log(u.f_star) + u.innovation * u.innovation / u.f_star);
  } else {
    // A noise-free observation of a known linear combination: carries no information.
    u.k0 = Vector::Zero(z.size());
  }
  return u;
}

}  // namespace kwm::ssm
