// RTS smoother and the exact diffuse backward smoother.
#include "core/ssm/smoother.hpp"

#include <stdexcept>

#include "core/ssm/spd.hpp"

namespace kwm::ssm {

SmootherResult rts_smoother(const LinearGaussianModel& model, const FilterResult& filtered) {
  if (filtered.diffuse_steps > 0) {
    throw std::invalid_argument("rts_smoother: the filter had a diffuse phase; use smoother()");
  }
  const auto T = static_cast<Index>(filtered.filtered_means.size());
  SmootherResult out;
  out.means.resize(static_cast<std::size_t>(T));
  out.covs.resize(static_cast<std::size_t>(T));
  if (T == 0) return out;
  const auto last = static_cast<std::size_t>(T - 1);
  out.means[last] = filtered.filtered_means[last];
  out.covs[last] = filtered.filtered_covs[last];
  for (Index t = T - 2; t >= 0; --t) {
    const auto k = static_cast<std::size_t>(t);
    const Matrix& P_f = filtered.filtered_covs[k];
    const Matrix& P_p = filtered.predicted_covs[k + 1];  // F P_f F^T + Q
    // Smoother gain J = P_f F^T P_p^-1 via a Cholesky solve.
    const SpdFactor factor(P_p, "predicted state covariance");
    const Matrix J = factor.solve_right(P_f * model.F.transpose());
    out.means[k] =
        filtered.filtered_means[k] + J * (out.means[k + 1] - filtered.predicted_means[k + 1]);
    out.covs[k] = symmetrized(P_f + J * (out.covs[k + 1] - P_p) * J.transpose());
  }
  return out;
}

namespace {

// The backward state of the exact initial smoother: r0, N0 are the ordinary r_t, N_t; r1, N1, N2
// the coefficients of the diffuse terms (DK 2012, 5.3). Outside the diffuse phase r1 = N1 = N2 = 0.
struct BackwardState {
  Vector r0, r1;
  Matrix N0, N1, N2;
};

// One scalar observation of the exact initial filter, undone: the kappa -> infinity expansion of
// r <- z v / f + L^T r and N <- z z^T / f + L^T N L with f^-1 = f_inf^-1 / kappa
// - f_star f_inf^-2 / kappa^2 + ... and L = L0 + L1 / kappa (DK 2012, 5.3, with T = I).
void backward_diffuse_scalar(const DiffuseScalarUpdate& u, BackwardState& s) {
  const Index n = u.z.size();
  const Matrix I = Matrix::Identity(n, n);
  if (u.diffuse) {
    const Matrix L0 = I - u.k0 * u.z.transpose();
    const Matrix L1 = -u.k1 * u.z.transpose();
    const Matrix zz = u.z * u.z.transpose();
    const Vector r0 = L0.transpose() * s.r0;
    const Vector r1 =
        u.z * (u.innovation / u.f_inf) + L0.transpose() * s.r1 + L1.transpose() * s.r0;
    const Matrix N0 = L0.transpose() * s.N0 * L0;
    const Matrix N1 = zz / u.f_inf + L0.transpose() * s.N1 * L0 + L1.transpose() * s.N0 * L0 +
                      L0.transpose() * s.N0 * L1;
    const Matrix N2 = zz * (-u.f_star / (u.f_inf * u.f_inf)) + L0.transpose() * s.N2 * L0 +
                      L0.transpose() * s.N1 * L1 + L1.transpose() * s.N1.transpose() * L0 +
                      L1.transpose() * s.N0 * L1;
    s = {r0, r1, N0, N1, symmetrized(N2)};
  } else if (u.f_star > 0) {
    const Matrix L0 = I - u.k0 * u.z.transpose();
    s.r0 = u.z * (u.innovation / u.f_star) + L0.transpose() * s.r0;
    s.N0 = symmetrized(u.z * u.z.transpose() / u.f_star + L0.transpose() * s.N0 * L0);
    // Here Pinf z = 0, so the gain has no 1/kappa term: the diffuse coefficients only pass
    // through L0 (DK write T' r1 instead, which agrees once premultiplied by Pinf).
    s.r1 = L0.transpose() * s.r1;
    s.N1 = L0.transpose() * s.N1 * L0;
    s.N2 = symmetrized(L0.transpose() * s.N2 * L0);
  }
}

}  // namespace

SmootherResult backward_smoother(const LinearGaussianModel& model, const FilterResult& filtered) {
  const auto T = static_cast<Index>(filtered.filtered_means.size());
  const Index n = model.state_dim();
  SmootherResult out;
  out.means.resize(static_cast<std::size_t>(T));
  out.covs.resize(static_cast<std::size_t>(T));
  BackwardState s{Vector::Zero(n), Vector::Zero(n), Matrix::Zero(n, n), Matrix::Zero(n, n),
                  Matrix::Zero(n, n)};
  const Matrix& F = model.F;
  for (Index t = T - 1; t >= 0; --t) {
    const auto k = static_cast<std::size_t>(t);
    const FilterStep& step = filtered.steps[k];
    if (t < T - 1) {
      // Through the transition x_{t+1} = F x_t + ...: r <- F^T r, N <- F^T N F.
      s.r0 = F.transpose() * s.r0;
      s.r1 = F.transpose() * s.r1;
      s.N0 = F.transpose() * s.N0 * F;
      s.N1 = F.transpose() * s.N1 * F;
      s.N2 = F.transpose() * s.N2 * F;
    }
    const Vector& a = filtered.predicted_means[k];
    const Matrix& P = filtered.predicted_covs[k];
    if (step.diffuse) {
      for (auto it = step.scalar_updates.rbegin(); it != step.scalar_updates.rend(); ++it) {
        backward_diffuse_scalar(*it, s);
      }
      const Matrix& Pinf = filtered.predicted_diffuse_covs[k];
      const Matrix PinfN1P = Pinf * s.N1 * P;
      out.means[k] = a + P * s.r0 + Pinf * s.r1;
      out.covs[k] =
          symmetrized(P - P * s.N0 * P - PinfN1P.transpose() - PinfN1P - Pinf * s.N2 * Pinf);
    } else {
      if (!step.observed.empty()) {
        // r <- H^T S^-1 e + (I - K H)^T r,  N <- H^T S^-1 H + (I - K H)^T N (I - K H)
        const Matrix I_KH = Matrix::Identity(n, n) - step.gain * step.H_obs;
        s.r0 = step.H_obs.transpose() * step.innovation_factor.solve(step.innovation) +
               I_KH.transpose() * s.r0;
        s.N0 = symmetrized(step.H_obs.transpose() * step.innovation_factor.solve(step.H_obs) +
                           I_KH.transpose() * s.N0 * I_KH);
      }
      out.means[k] = a + P * s.r0;
      out.covs[k] = symmetrized(P - P * s.N0 * P);
    }
  }
  return out;
}

SmootherResult smoother(const LinearGaussianModel& model, const FilterResult& filtered) {
  return filtered.diffuse_steps > 0 ? backward_smoother(model, filtered)
                                    : rts_smoother(model, filtered);
}

}  // namespace kwm::ssm
