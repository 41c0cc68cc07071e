// Channel mixer forward pass and its exact instantaneous Jacobians.
#include "core/models/channel_mixer.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>

namespace kwm {
namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Exact GELU q Phi(q) and its derivative Phi(q) + q phi(q).
double gelu(double q) { return 0.5 * q * (1.0 + std::erf(q / std::numbers::sqrt2)); }
double gelu_slope(double q) {
  return 0.5 * (1.0 + std::erf(q / std::numbers::sqrt2)) +
         q * std::exp(-0.5 * q * q) / std::sqrt(2.0 * std::numbers::pi);
}

}  // namespace

std::string to_string(MixerKind kind) {
  switch (kind) {
    case MixerKind::none:
      return "none";
    case MixerKind::glu:
      return "glu";
    case MixerKind::mlp:
      return "mlp";
  }
  return "unknown";
}

MixerKind mixer_kind_from_string(const std::string& name) {
  if (name == "none") return MixerKind::none;
  if (name == "glu") return MixerKind::glu;
  if (name == "mlp") return MixerKind::mlp;
  throw std::invalid_argument("mixer must be one of none, glu, mlp; got '" + name + "'");
}

ChannelMixer::ChannelMixer(MixerKind kind, Index width, Index hidden)
    : kind_(kind), width_(width), hidden_(hidden) {}

Index ChannelMixer::size() const {
  switch (kind_) {
    case MixerKind::none:
      return 0;
    case MixerKind::glu:
      return width_ * (2 * width_ + 2);
    case MixerKind::mlp:
      return hidden_ * (width_ + 1) + width_ * (hidden_ + 1);
  }
  return 0;
}

void ChannelMixer::add_groups(ParameterLayout& layout, const std::string& prefix) const {
  if (kind_ == MixerKind::glu) {
    layout.add(prefix + ".mixer", GroupKind::mixer, width_, 2 * width_ + 2);
  } else if (kind_ == MixerKind::mlp) {
    layout.add(prefix + ".mixer_in", GroupKind::mixer, hidden_, width_ + 1);
    layout.add(prefix + ".mixer_out", GroupKind::mixer, width_, hidden_ + 1);
  }
}

void ChannelMixer::initialise(double* theta, std::mt19937_64& rng) const {
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::Map<Eigen::VectorXd> values(theta, size());
  values.setZero();
  // Walk the row-major units; weights get N(0, 1/fan_in), the bias at the end of a unit stays 0.
  auto fill_units = [&](Index offset, Index units, Index fan_in) {
    const double sd = 1.0 / std::sqrt(static_cast<double>(fan_in));
    for (Index u = 0; u < units; ++u) {
      for (Index j = 0; j < fan_in; ++j) values(offset + u * (fan_in + 1) + j) = sd * normal(rng);
    }
  };
  if (kind_ == MixerKind::glu) {
    for (Index i = 0; i < width_; ++i) {
      const Index unit = i * (2 * width_ + 2);
      const double sd = 1.0 / std::sqrt(static_cast<double>(width_));
      for (Index j = 0; j < width_; ++j) values(unit + j) = sd * normal(rng);
      for (Index j = 0; j < width_; ++j) values(unit + width_ + 1 + j) = sd * normal(rng);
    }
  } else if (kind_ == MixerKind::mlp) {
    fill_units(0, hidden_, width_);
    fill_units(hidden_ * (width_ + 1), width_, hidden_);
  }
}

void ChannelMixer::unpack(const double* theta) {
  if (kind_ == MixerKind::glu) {
    const Index unit = 2 * width_ + 2;
    Eigen::Map<const RowMajorMatrix> units(theta, width_, unit);
    w1_ = units.leftCols(width_);
    b1_ = units.col(width_);
    w2_ = units.middleCols(width_ + 1, width_);
    b2_ = units.col(2 * width_ + 1);
  } else if (kind_ == MixerKind::mlp) {
    Eigen::Map<const RowMajorMatrix> in(theta, hidden_, width_ + 1);
    Eigen::Map<const RowMajorMatrix> out(theta + hidden_ * (width_ + 1), width_, hidden_ + 1);
    w1_ = in.leftCols(width_);
    b1_ = in.col(width_);
    w2_ = out.leftCols(hidden_);
    b2_ = out.col(hidden_);
  }
}

void ChannelMixer::forward(const Eigen::VectorXd& y, Activation& act) const {
  act.y = y;
  if (kind_ == MixerKind::none) {
    act.a = y;
  } else if (kind_ == MixerKind::glu) {
    act.linear = w1_ * y + b1_;
    const Eigen::VectorXd gate_input = w2_ * y + b2_;
    act.gate = gate_input.unaryExpr(&sigmoid);
    act.slope = act.gate.array() * (1.0 - act.gate.array());
    act.a = act.linear.cwiseProduct(act.gate);
  } else {
    act.linear = w1_ * y + b1_;
    act.gate = act.linear.unaryExpr(&gelu);
    act.slope = act.linear.unaryExpr(&gelu_slope);
    act.a = w2_ * act.gate + b2_;
  }
}

Eigen::MatrixXd ChannelMixer::input_jacobian(const Activation& act) const {
  switch (kind_) {
    case MixerKind::none:
      return Eigen::MatrixXd::Identity(width_, width_);
    case MixerKind::glu:
      // d(g (.) s)/dy = diag(s) W1 + diag(g (.) s') W2
      return act.gate.asDiagonal() * w1_ + act.linear.cwiseProduct(act.slope).asDiagonal() * w2_;
    case MixerKind::mlp:
      return w2_ * act.slope.asDiagonal() * w1_;
  }
  return {};
}

void ChannelMixer::parameter_jacobian(const Eigen::MatrixXd& r, const Activation& act,
                                      Eigen::Ref<Eigen::MatrixXd> out) const {
  if (kind_ == MixerKind::glu) {
    // da_i/dW1_ij = s_i y_j, da_i/db1_i = s_i, da_i/dW2_ij = g_i s'_i y_j, da_i/db2_i = g_i s'_i.
    const Index unit = 2 * width_ + 2;
    for (Index i = 0; i < width_; ++i) {
      const Eigen::VectorXd via_linear = r.col(i) * act.gate(i);
      const Eigen::VectorXd via_gate = r.col(i) * (act.linear(i) * act.slope(i));
      for (Index j = 0; j < width_; ++j) {
        out.col(i * unit + j) = via_linear * act.y(j);
        out.col(i * unit + width_ + 1 + j) = via_gate * act.y(j);
      }
      out.col(i * unit + width_) = via_linear;
      out.col(i * unit + 2 * width_ + 1) = via_gate;
    }
  } else if (kind_ == MixerKind::mlp) {
    // Hidden unit j: da/dW1_jk = W2_.j gelu'(q_j) y_k, da/db1_j = W2_.j gelu'(q_j).
    const Eigen::MatrixXd r_w2 = r * w2_;
    for (Index j = 0; j < hidden_; ++j) {
      const Eigen::VectorXd via_hidden = r_w2.col(j) * act.slope(j);
      for (Index k = 0; k < width_; ++k) out.col(j * (width_ + 1) + k) = via_hidden * act.y(k);
      out.col(j * (width_ + 1) + width_) = via_hidden;
    }
    // Output unit i: da_i/dW2_ij = gelu(q_j), da_i/db2_i = 1.
    const Index base = hidden_ * (width_ + 1);
    for (Index i = 0; i < width_; ++i) {
      for (Index j = 0; j < hidden_; ++j)
        out.col(base + i * (hidden_ + 1) + j) = r.col(i) * act.gate(j);
      out.col(base + i * (hidden_ + 1) + hidden_) = r.col(i);
    }
  }
}

}  // namespace kwm
