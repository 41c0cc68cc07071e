// Complex-diagonal recurrence: forward step, own-parameter sensitivities, tangent propagation.
#include "core/models/diagonal_layer.hpp"

#include <cmath>
#include <complex>

namespace kwm {

using Complex = std::complex<double>;

DiagonalLayer::DiagonalLayer(Index width, Index states) : width_(width), states_(states) {}

void DiagonalLayer::add_groups(ParameterLayout& layout, const std::string& prefix) const {
  layout.add(prefix + ".recurrence", GroupKind::recurrence, states_, 4 * width_ + 2);
  layout.add(prefix + ".skip", GroupKind::feedthrough, width_, 1);
}

void DiagonalLayer::initialise(double* theta, std::mt19937_64& rng, double min_radius,
                               double max_radius, double max_phase) const {
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  const Index unit = 4 * width_ + 2;
  const double c_sd = 1.0 / std::sqrt(static_cast<double>(states_));
  for (Index n = 0; n < states_; ++n) {
    double* p = theta + n * unit;
    const double r2 = min_radius * min_radius +
                      uniform(rng) * (max_radius * max_radius - min_radius * min_radius);
    const double radius = std::sqrt(r2);
    p[0] = std::log(-std::log(radius));
    p[1] = max_phase * uniform(rng);
    const double b_sd = std::sqrt((1.0 - r2) / (2.0 * static_cast<double>(width_)));
    for (Index j = 0; j < 2 * width_; ++j) p[2 + j] = b_sd * normal(rng);
    for (Index j = 0; j < 2 * width_; ++j) p[2 + 2 * width_ + j] = c_sd * normal(rng);
  }
  for (Index i = 0; i < width_; ++i) theta[recurrence_size() + i] = normal(rng);
}

void DiagonalLayer::unpack(const double* theta) {
  const Index unit = 4 * width_ + 2;
  exp_nu_.resize(states_);
  lambda_.resize(states_);
  b_re_.resize(states_, width_);
  b_im_.resize(states_, width_);
  c_re_.resize(width_, states_);
  c_im_.resize(width_, states_);
  for (Index n = 0; n < states_; ++n) {
    const double* p = theta + n * unit;
    exp_nu_(n) = std::exp(p[0]);
    lambda_(n) = std::exp(Complex(-exp_nu_(n), p[1]));
    b_re_.row(n) = Eigen::Map<const Eigen::RowVectorXd>(p + 2, width_);
    b_im_.row(n) = Eigen::Map<const Eigen::RowVectorXd>(p + 2 + width_, width_);
    c_re_.col(n) = Eigen::Map<const Eigen::VectorXd>(p + 2 + 2 * width_, width_);
    c_im_.col(n) = Eigen::Map<const Eigen::VectorXd>(p + 2 + 3 * width_, width_);
  }
  d_ = Eigen::Map<const Eigen::VectorXd>(theta + recurrence_size(), width_);
  // Re(C B) = Re C Re B - Im C Im B
  instantaneous_ = c_re_ * b_re_ - c_im_ * b_im_;
  instantaneous_.diagonal() += d_;
}

DiagonalLayer::State DiagonalLayer::zero_state() const {
  return {Eigen::VectorXcd::Zero(states_), Eigen::VectorXcd::Zero(states_),
          Eigen::MatrixXcd::Zero(states_, width_)};
}

void DiagonalLayer::forward(const State& prev, const Eigen::VectorXd& z, State& next,
                            Eigen::VectorXd& y) const {
  const Eigen::VectorXd bz_re = b_re_ * z;
  const Eigen::VectorXd bz_im = b_im_ * z;
  next.h = lambda_.cwiseProduct(prev.h);
  next.h.real() += bz_re;
  next.h.imag() += bz_im;
  next.s_lambda = lambda_.cwiseProduct(prev.s_lambda) + prev.h;
  next.s_b = lambda_.asDiagonal() * prev.s_b;
  next.s_b.real().rowwise() += z.transpose();
  // Re(C h) = Re C Re h - Im C Im h
  y = c_re_ * next.h.real() - c_im_ * next.h.imag() + d_.cwiseProduct(z);
}

void DiagonalLayer::parameter_jacobian(const Eigen::MatrixXd& r, const State& next,
                                       const Eigen::VectorXd& z,
                                       Eigen::Ref<Eigen::MatrixXd> out) const {
  // A parameter p that moves only h_n contributes R Re(C_.n dh_n/dp) = Re(Q_.n dh_n/dp) with
  // Q = R C. Re(Q c) = Re Q Re c - Im Q Im c.
  const Eigen::MatrixXd q_re = r * c_re_;
  const Eigen::MatrixXd q_im = r * c_im_;
  auto through_state = [&](Index n, Complex dh) -> Eigen::VectorXd {
    return q_re.col(n) * dh.real() - q_im.col(n) * dh.imag();
  };
  const Complex i_unit(0.0, 1.0);
  const Index unit = 4 * width_ + 2;
  for (Index n = 0; n < states_; ++n) {
    const Index base = n * unit;
    // dlam/dnu = -exp(nu) lam, dlam/dtheta = i lam; h is holomorphic in lam.
    out.col(base) = through_state(n, next.s_lambda(n) * (-exp_nu_(n) * lambda_(n)));
    out.col(base + 1) = through_state(n, next.s_lambda(n) * (i_unit * lambda_(n)));
    for (Index j = 0; j < width_; ++j) {
      const Complex s = next.s_b(n, j);
      out.col(base + 2 + j) = through_state(n, s);                    // Re B_nj
      out.col(base + 2 + width_ + j) = through_state(n, i_unit * s);  // Im B_nj
    }
    // y_i = sum_n Re C_in Re h_n - Im C_in Im h_n
    for (Index i = 0; i < width_; ++i) {
      out.col(base + 2 + 2 * width_ + i) = r.col(i) * next.h(n).real();
      out.col(base + 2 + 3 * width_ + i) = -r.col(i) * next.h(n).imag();
    }
  }
  for (Index i = 0; i < width_; ++i) out.col(recurrence_size() + i) = r.col(i) * z(i);
}

void DiagonalLayer::propagate_tangent(const Eigen::MatrixXd& t_re_prev,
                                      const Eigen::MatrixXd& t_im_prev, const Eigen::MatrixXd& g,
                                      Eigen::MatrixXd& t_re, Eigen::MatrixXd& t_im,
                                      Eigen::MatrixXd& dy) const {
  const Eigen::VectorXd lam_re = lambda_.real();
  const Eigen::VectorXd lam_im = lambda_.imag();
  t_re.noalias() = lam_re.asDiagonal() * t_re_prev;
  t_re.noalias() -= lam_im.asDiagonal() * t_im_prev;
  t_re.noalias() += b_re_ * g;
  t_im.noalias() = lam_re.asDiagonal() * t_im_prev;
  t_im.noalias() += lam_im.asDiagonal() * t_re_prev;
  t_im.noalias() += b_im_ * g;
  dy.noalias() = c_re_ * t_re;
  dy.noalias() -= c_im_ * t_im;
  dy.noalias() += d_.asDiagonal() * g;
}

bool DiagonalLayer::project(double* theta, double bound) const {
  // |lam| = exp(-exp(nu)) <= bound  <=>  nu >= log(-log(bound)).
  const double nu_floor = std::log(-std::log(bound));
  bool changed = false;
  for (Index n = 0; n < states_; ++n) {
    double& nu = theta[n * (4 * width_ + 2)];
    if (nu < nu_floor) {
      nu = nu_floor;
      changed = true;
    }
  }
  return changed;
}

}  // namespace kwm
