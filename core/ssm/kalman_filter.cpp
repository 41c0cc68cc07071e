// Kalman filter driver, exact initial filter for diffuse states, Gaussian log-likelihood.
#include "core/ssm/kalman_filter.hpp"

#include <fmt/format.h>

namespace kwm::ssm {

namespace {

bool is_zero(const Matrix& a) {
  return a.size() == 0 || a.cwiseAbs().maxCoeff() <= kDiffuseTolerance;
}

Vector input_term(const LinearGaussianModel& model, const Matrix& u, Index t) {
  if (model.input_dim() == 0) return {};
  return model.B * u.row(t).transpose();
}

// The exact initial filter at one time step: decorrelate the observed rows, absorb them one at a
// time. Returns the log-likelihood contribution.
double diffuse_update(const LinearGaussianModel& model, const Vector& y_t, DiffuseGaussian& state,
                      FilterStep& step) {
  if (step.observed.empty()) return 0.0;
  const Vector y_obs = select_rows(y_t, step.observed);
  const Matrix H_obs = select_rows(model.H, step.observed);
  const SpdFactor r_factor(select_block(model.R, step.observed), "observation covariance R");
  const Matrix L = r_factor.lower();
  const Matrix H_star = L.triangularView<Eigen::Lower>().solve(H_obs);
  const Vector y_star = L.triangularView<Eigen::Lower>().solve(y_obs);
  // Jacobian of y -> y*: log|det L^-1| = -log det R / 2.
  double loglik = -0.5 * r_factor.log_det();
  for (Index i = 0; i < y_star.size(); ++i) {
    step.scalar_updates.push_back(
        condition_on_diffuse_scalar(state, H_star.row(i).transpose(), y_star[i], 1.0));
    loglik += step.scalar_updates.back().loglik;
  }
  return loglik;
}

}  // namespace

FilterResult kalman_filter(const LinearGaussianModel& model, const Matrix& y, const Matrix& u) {
  const Index T = y.rows();
  const Index n = model.state_dim();
  if (y.cols() != model.obs_dim()) {
    throw ModelError(fmt::format("the data has {} observation columns but H has {} rows", y.cols(),
                                 model.obs_dim()));
  }
  if (model.input_dim() > 0 && (u.rows() != T || u.cols() != model.input_dim())) {
    throw ModelError(fmt::format("the inputs must be a {}x{} matrix (B has {} columns); got {}x{}",
                                 T, model.input_dim(), model.input_dim(), u.rows(), u.cols()));
  }

  FilterResult out;
  out.steps.resize(static_cast<std::size_t>(T));
  DiffuseGaussian state{model.init.mean, model.init.cov, model.init.diffuse_cov};
  bool diffuse = model.init.is_diffuse();
  const Matrix zero = Matrix::Zero(n, n);

  for (Index t = 0; t < T; ++t) {
    FilterStep& step = out.steps[static_cast<std::size_t>(t)];
    const Vector y_t = y.row(t).transpose();
    step.observed = observed_rows(y_t);
    out.n_obs += static_cast<Index>(step.observed.size());
    out.n_missing += y_t.size() - static_cast<Index>(step.observed.size());
    out.predicted_means.push_back(state.mean);
    out.predicted_covs.push_back(state.cov);
    out.predicted_diffuse_covs.push_back(diffuse ? state.diffuse_cov : zero);

    double loglik = 0.0;
    if (diffuse) {
      step.diffuse = true;
      loglik = diffuse_update(model, y_t, state, step);
      for (const auto& update : step.scalar_updates) out.n_diffuse_obs += update.diffuse ? 1 : 0;
      ++out.diffuse_steps;
    } else if (!step.observed.empty()) {
      step.H_obs = select_rows(model.H, step.observed);
      Conditioned c = condition_on({state.mean, state.cov}, select_rows(y_t, step.observed),
                                   step.H_obs, select_block(model.R, step.observed));
      state.mean = std::move(c.posterior.mean);
      state.cov = std::move(c.posterior.cov);
      step.innovation = std::move(c.innovation);
      step.innovation_factor = c.innovation_factor;
      step.gain = std::move(c.gain);
      loglik = c.loglik;
    }
    out.loglik_terms.push_back(loglik);
    out.loglik += loglik;
    out.filtered_means.push_back(state.mean);
    out.filtered_covs.push_back(state.cov);
    out.filtered_diffuse_covs.push_back(diffuse ? state.diffuse_cov : zero);

    // The diffuse phase ends once every diffuse direction has been observed (Pinf = 0).
    if (diffuse && is_zero(state.diffuse_cov)) {
      diffuse = false;
      state.diffuse_cov.setZero();
    }
    const Vector Bu = input_term(model, u, t);
    const Gaussian next = predict({state.mean, state.cov}, model.F, Bu, model.Q);
    state.mean = next.mean;
    state.cov = next.cov;
    if (diffuse) {
      state.diffuse_cov = symmetrized(model.F * state.diffuse_cov * model.F.transpose());
    }
  }
  out.next_prediction = {state.mean, state.cov};
  return out;
}

}  // namespace kwm::ssm
