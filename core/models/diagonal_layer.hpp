// One complex-diagonal linear recurrence (LRU / S4D-like) on a width-H channel vector z:
//   h_t = lam (.) h_{t-1} + B z_t,   y_t = Re(C h_t) + D (.) z_t,   lam = exp(-exp(nu) + i theta)
// h in C^N, B in C^{N x H}, C in C^{H x N}, D in R^H; |lam| < 1 by construction.
// Also its own-parameter forward sensitivities and the tangent of h wrt parameters below it.
#pragma once

#include <Eigen/Dense>
#include <random>
#include <string>

#include "core/models/parameter_group.hpp"

namespace kwm {

class DiagonalLayer {
 public:
  // The recurrent state at one time and its sensitivities to this layer's own parameters, which
  // the diagonal structure keeps compact: dh_n depends only on (nu_n, theta_n, B_n.).
  struct State {
    Eigen::VectorXcd h;         // h_t
    Eigen::VectorXcd s_lambda;  // dh_t,n / dlam_n = lam_n dh_{t-1,n}/dlam_n + h_{t-1,n}
    Eigen::MatrixXcd s_b;       // dh_t,n / dB_nj  = lam_n dh_{t-1,n}/dB_nj + z_t,j   (N x H)
  };

  DiagonalLayer(Index width, Index states);

  // theta layout: "<prefix>.recurrence", N units [nu_n, theta_n, Re B_n., Im B_n., Re C_.n,
  // Im C_.n] (4H + 2 each), then "<prefix>.skip", the H entries of D.
  Index recurrence_size() const { return states_ * (4 * width_ + 2); }
  Index size() const { return recurrence_size() + width_; }
  void add_groups(ParameterLayout& layout, const std::string& prefix) const;
  // |lam_n|^2 uniform in [min_radius^2, max_radius^2] (uniform on the ring), theta_n uniform in
  // [0, max_phase], B rows N(0, (1 - |lam_n|^2) / (2H)) per real and imaginary part so h_n has
  // about unit variance for unit white input, C N(0, 1/N), D N(0, 1).
  void initialise(double* theta, std::mt19937_64& rng, double min_radius, double max_radius,
                  double max_phase) const;
  void unpack(const double* theta);

  State zero_state() const;
  // next from prev and the input z_t; y = Re(C h_t) + D (.) z_t.
  void forward(const State& prev, const Eigen::VectorXd& z, State& next, Eigen::VectorXd& y) const;
  // out (r x size()) = R dy_t/dtheta_layer for R (r x H), exact through this layer's recurrence.
  void parameter_jacobian(const Eigen::MatrixXd& r, const State& next, const Eigen::VectorXd& z,
                          Eigen::Ref<Eigen::MatrixXd> out) const;
  // Tangent of h wrt the parameters below this layer (forward mode through the stack), real and
  // imaginary parts N x P_below: T_t = lam (.) T_{t-1} + B G_t with G_t = dz_t/dtheta_below.
  // dy = dy_t/dtheta_below = Re(C T_t) + diag(D) G_t.
  void propagate_tangent(const Eigen::MatrixXd& t_re_prev, const Eigen::MatrixXd& t_im_prev,
                         const Eigen::MatrixXd& g, Eigen::MatrixXd& t_re, Eigen::MatrixXd& t_im,
                         Eigen::MatrixXd& dy) const;
  // dy_t/dz_t with h_{t-1} held fixed: Re(C B) + diag(D) (the layer-local approximation).
  const Eigen::MatrixXd& instantaneous_jacobian() const { return instantaneous_; }

  const Eigen::VectorXcd& lambda() const { return lambda_; }
  // Raises nu_n in theta (this layer's slice) to log(-log(bound)) where |lam_n| > bound.
  // Returns true when any changed.
  bool project(double* theta, double bound) const;

 private:
  Index width_, states_;
  Eigen::VectorXd exp_nu_;
  Eigen::VectorXcd lambda_;
  Eigen::MatrixXd b_re_, b_im_, c_re_, c_im_;
  Eigen::VectorXd d_;
  Eigen::MatrixXd instantaneous_;
};

}  // namespace kwm
