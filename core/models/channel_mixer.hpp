// The nonlinear channel mixer between diagonal layers, a = f(y), with its instantaneous input
// Jacobian da/dy and parameter Jacobian da/dtheta_mixer (applied to a left factor R).
//   none: a = y
//   glu:  a = (W1 y + b1) (.) sigmoid(W2 y + b2)          units: output i, [W1_i. b1_i W2_i. b2_i]
//   mlp:  a = W2 gelu(W1 y + b1) + b2   two groups: "mixer_in" units: hidden j, [W1_j. b1_j]
//                                                   "mixer_out" units: output i, [W2_i. b2_i]
#pragma once

#include <Eigen/Dense>
#include <random>
#include <string>

#include "core/models/parameter_group.hpp"

namespace kwm {

enum class MixerKind { none, glu, mlp };

std::string to_string(MixerKind kind);
// Throws std::invalid_argument listing the known kinds.
MixerKind mixer_kind_from_string(const std::string& name);

class ChannelMixer {
 public:
  // What forward() saves for the Jacobians.
  struct Activation {
    Eigen::VectorXd y;       // input
    Eigen::VectorXd linear;  // glu: W1 y + b1;           mlp: W1 y + b1 (hidden)
    Eigen::VectorXd gate;    // glu: sigmoid(W2 y + b2);  mlp: gelu(W1 y + b1)
    Eigen::VectorXd slope;   // glu: sigmoid';            mlp: gelu'
    Eigen::VectorXd a;       // output
  };

  ChannelMixer(MixerKind kind, Index width, Index hidden);

  MixerKind kind() const { return kind_; }
  Index size() const;
  // Appends this mixer's groups ("<prefix>.mixer" or "<prefix>.mixer_in/out") to the layout.
  void add_groups(ParameterLayout& layout, const std::string& prefix) const;
  // Draws the initial parameters (weights N(0, 1/fan_in), biases 0) into theta[0, size()).
  void initialise(double* theta, std::mt19937_64& rng) const;
  // Reads the parameters from theta[0, size()).
  void unpack(const double* theta);

  void forward(const Eigen::VectorXd& y, Activation& act) const;
  // da/dy (width x width).
  Eigen::MatrixXd input_jacobian(const Activation& act) const;
  // out = R da/dtheta_mixer (R: r x width, out: r x size()).
  void parameter_jacobian(const Eigen::MatrixXd& r, const Activation& act,
                          Eigen::Ref<Eigen::MatrixXd> out) const;

 private:
  MixerKind kind_;
  Index width_, hidden_;
  Eigen::MatrixXd w1_, w2_;
  Eigen::VectorXd b1_, b2_;
};

}  // namespace kwm
