// Deep diagonal recurrent stack: forward pass, exact forward-mode and layer-local Jacobians,
// and the |lam| projection.
#include "core/models/diagonal_stack.hpp"

#include <random>
#include <stdexcept>
#include <string>

namespace kwm {

std::string to_string(SensitivityMode mode) {
  return mode == SensitivityMode::exact ? "exact" : "layer_local";
}

SensitivityMode sensitivity_mode_from_string(const std::string& name) {
  if (name == "exact") return SensitivityMode::exact;
  if (name == "layer_local") return SensitivityMode::layer_local;
  throw std::invalid_argument("sensitivity must be one of exact, layer_local; got '" + name + "'");
}

void DiagonalStackConfig::validate() const {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw std::invalid_argument("diagonal_stack: " + message);
  };
  require(n_in >= 0, "n_in must be >= 0; got " + std::to_string(n_in));
  require(n_out >= 1, "n_out must be >= 1; got " + std::to_string(n_out));
  require(output_lags >= 0, "output_lags must be >= 0; got " + std::to_string(output_lags));
  require(width >= 1, "width must be >= 1; got " + std::to_string(width));
  require(states >= 1, "states must be >= 1; got " + std::to_string(states));
  require(layers >= 1, "layers must be >= 1; got " + std::to_string(layers));
  require(mixer_hidden >= 0, "mixer_hidden must be >= 0; got " + std::to_string(mixer_hidden));
  require(min_radius > 0.0 && min_radius <= max_radius && max_radius < 1.0,
          "radii need 0 < min_radius <= max_radius < 1; got " + std::to_string(min_radius) + ", " +
              std::to_string(max_radius));
  require(max_phase >= 0.0, "max_phase must be >= 0; got " + std::to_string(max_phase));
}

namespace {

const DiagonalStackConfig& validated(const DiagonalStackConfig& config) {
  config.validate();
  return config;
}

}  // namespace

DiagonalStack::DiagonalStack(const DiagonalStackConfig& config)
    : SequenceModel(validated(config).n_in, config.n_out, config.output_lags),
      config_(config),
      n_v_(model_input_size()) {
  const Index h = config.width;
  ParameterLayout layout;
  layout.add("input", GroupKind::input, h, n_v_ + 1);
  for (Index l = 0; l < config.layers; ++l) {
    const std::string prefix = "layer" + std::to_string(l + 1);
    layers_.emplace_back(h, config.states);
    mixers_.emplace_back(config.mixer, h, config.hidden());
    layer_offset_.push_back(layout.size());
    layers_.back().add_groups(layout, prefix);
    mixer_offset_.push_back(layout.size());
    mixers_.back().add_groups(layout, prefix);
  }
  readout_offset_ = layout.add("readout", GroupKind::linear_readout, config.n_out, h + 1, true);

  std::mt19937_64 rng(config.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::VectorXd theta = Eigen::VectorXd::Zero(layout.size());
  // Weights N(0, 1/fan_in), biases 0.
  const double in_sd = 1.0 / std::sqrt(static_cast<double>(std::max<Index>(1, n_v_)));
  for (Index i = 0; i < h; ++i) {
    for (Index j = 0; j < n_v_; ++j) theta(i * (n_v_ + 1) + j) = in_sd * normal(rng);
  }
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    layers_[l].initialise(theta.data() + layer_offset_[l], rng, config.min_radius,
                          config.max_radius, config.max_phase);
    mixers_[l].initialise(theta.data() + mixer_offset_[l], rng);
  }
  const double out_sd = 1.0 / std::sqrt(static_cast<double>(h));
  for (Index i = 0; i < config.n_out; ++i) {
    for (Index j = 0; j < h; ++j) theta(readout_offset_ + i * (h + 1) + j) = out_sd * normal(rng);
  }
  set_layout(layout, theta);
  reset_state();
}

double DiagonalStack::max_modulus() const {
  double modulus = 0.0;
  for (const auto& layer : layers_)
    modulus = std::max(modulus, layer.lambda().cwiseAbs().maxCoeff());
  return modulus;
}

void DiagonalStack::on_theta_changed() {
  const Index h = config_.width;
  w_in_ = Eigen::Map<const RowMajorMatrix>(theta_.data(), h, n_v_ + 1);
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    layers_[l].unpack(theta_.data() + layer_offset_[l]);
    mixers_[l].unpack(theta_.data() + mixer_offset_[l]);
  }
  w_out_ = Eigen::Map<const RowMajorMatrix>(theta_.data() + readout_offset_, config_.n_out, h + 1);
}

void DiagonalStack::reset_state() {
  const std::size_t n_layers = layers_.size();
  state_.clear();
  for (const auto& layer : layers_) state_.push_back(layer.zero_state());
  pending_ = state_;
  tangent_re_.assign(n_layers, {});
  tangent_im_.assign(n_layers, {});
  if (config_.sensitivity == SensitivityMode::exact) {
    for (std::size_t l = 0; l < n_layers; ++l) {
      tangent_re_[l] = Eigen::MatrixXd::Zero(config_.states, layer_offset_[l]);
      tangent_im_[l] = Eigen::MatrixXd::Zero(config_.states, layer_offset_[l]);
    }
  }
  pending_re_ = tangent_re_;
  pending_im_ = tangent_im_;
  layer_input_.assign(n_layers, {});
  mixer_act_.assign(n_layers, {});
  mixer_jacobian_.assign(n_layers, {});
}

void DiagonalStack::predict(const Eigen::VectorXd& input, LinearizedPrediction& prediction) {
  input_aug_.resize(n_v_ + 1);
  input_aug_ << input, 1.0;
  Eigen::VectorXd z = w_in_ * input_aug_;
  Eigen::VectorXd y;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    layer_input_[l] = z;
    layers_[l].forward(state_[l], z, pending_[l], y);
    mixers_[l].forward(y, mixer_act_[l]);
    mixer_jacobian_[l] = mixers_[l].input_jacobian(mixer_act_[l]);
    z += mixer_act_[l].a;
  }
  z_top_ = z;
  prediction.yhat = w_out_.leftCols(config_.width) * z + w_out_.col(config_.width);
  readout_jacobian(z, prediction);
  if (config_.sensitivity == SensitivityMode::exact) {
    exact_jacobian(prediction);
  } else {
    layer_local_jacobian(prediction);
  }
}

void DiagonalStack::readout_jacobian(const Eigen::VectorXd& z_top,
                                     LinearizedPrediction& prediction) const {
  // yhat_i = W_out_i. [z_L; 1]: unit i of row i is the activation [z_L; 1].
  const Index h = config_.width;
  const Index cols = config_.n_out * (h + 1);
  if (!any_requested(readout_offset_, cols)) return;
  Eigen::MatrixXd block = Eigen::MatrixXd::Zero(config_.n_out, cols);
  for (Index i = 0; i < config_.n_out; ++i) {
    block.row(i).segment(i * (h + 1), h) = z_top.transpose();
    block(i, i * (h + 1) + h) = 1.0;
  }
  store_jacobian_columns(readout_offset_, block, prediction);
}

void DiagonalStack::exact_jacobian(LinearizedPrediction& prediction) {
  // G = dz_l / dtheta[0, offset of layer l + 1), grown layer by layer (forward mode).
  const Index h = config_.width;
  Eigen::MatrixXd g = Eigen::MatrixXd::Zero(h, h * (n_v_ + 1));
  for (Index i = 0; i < h; ++i) g.row(i).segment(i * (n_v_ + 1), n_v_ + 1) = input_aug_.transpose();
  const Eigen::MatrixXd identity = Eigen::MatrixXd::Identity(h, h);
  Eigen::MatrixXd dy_below;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Index below = g.cols();
    const Index own = layers_[l].size();
    const Index mix = mixers_[l].size();
    layers_[l].propagate_tangent(tangent_re_[l], tangent_im_[l], g, pending_re_[l], pending_im_[l],
                                 dy_below);
    Eigen::MatrixXd g_next(h, below + own + mix);
    // z_l = z_{l-1} + a(y_l): parameters below reach z_l directly and through y_l.
    g_next.leftCols(below) = g;
    g_next.leftCols(below).noalias() += mixer_jacobian_[l] * dy_below;
    layers_[l].parameter_jacobian(mixer_jacobian_[l], pending_[l], layer_input_[l],
                                  g_next.middleCols(below, own));
    if (mix > 0) mixers_[l].parameter_jacobian(identity, mixer_act_[l], g_next.rightCols(mix));
    g.swap(g_next);
  }
  Eigen::MatrixXd below_readout(config_.n_out, readout_offset_);
  below_readout.noalias() = w_out_.leftCols(h) * g;
  store_jacobian_columns(0, below_readout, prediction);
}

void DiagonalStack::layer_local_jacobian(LinearizedPrediction& prediction) const {
  // M_l = d yhat / d z_l through instantaneous Jacobians only, accumulated from the readout
  // down (n_out rows: the cheapest association of the product W_out J_L ... J_{l+1}). Nothing
  // from earlier time steps is revisited: this is not backpropagation through time.
  const Index h = config_.width;
  Eigen::MatrixXd m = w_out_.leftCols(h);
  for (std::size_t k = layers_.size(); k-- > 0;) {
    const Eigen::MatrixXd r = m * mixer_jacobian_[k];
    const Index own = layers_[k].size();
    if (any_requested(layer_offset_[k], own)) {
      Eigen::MatrixXd block(config_.n_out, own);
      layers_[k].parameter_jacobian(r, pending_[k], layer_input_[k], block);
      store_jacobian_columns(layer_offset_[k], block, prediction);
    }
    const Index mix = mixers_[k].size();
    if (mix > 0 && any_requested(mixer_offset_[k], mix)) {
      Eigen::MatrixXd block(config_.n_out, mix);
      mixers_[k].parameter_jacobian(m, mixer_act_[k], block);
      store_jacobian_columns(mixer_offset_[k], block, prediction);
    }
    // dz_k/dz_{k-1} = I + J_mix (Re(C B) + diag D)
    m.noalias() += r * layers_[k].instantaneous_jacobian();
  }
  if (any_requested(0, h * (n_v_ + 1))) {
    Eigen::MatrixXd block(config_.n_out, h * (n_v_ + 1));
    for (Index i = 0; i < h; ++i) {
      for (Index j = 0; j <= n_v_; ++j) block.col(i * (n_v_ + 1) + j) = m.col(i) * input_aug_(j);
    }
    store_jacobian_columns(0, block, prediction);
  }
}

void DiagonalStack::commit(const Eigen::VectorXd& /*y*/) {
  // The stack is an output-error model: y enters only through the lags, which the base handles.
  state_.swap(pending_);
  tangent_re_.swap(pending_re_);
  tangent_im_.swap(pending_im_);
}

void DiagonalStack::export_state(RecurrentState& state) const {
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const std::string at = "layer" + std::to_string(l) + ".";
    const DiagonalLayer::State& s = state_[l];
    state.emplace_back(at + "h.re", s.h.real());
    state.emplace_back(at + "h.im", s.h.imag());
    state.emplace_back(at + "s_lambda.re", s.s_lambda.real());
    state.emplace_back(at + "s_lambda.im", s.s_lambda.imag());
    state.emplace_back(at + "s_b.re", s.s_b.real());
    state.emplace_back(at + "s_b.im", s.s_b.imag());
    state.emplace_back(at + "tangent.re", tangent_re_[l]);
    state.emplace_back(at + "tangent.im", tangent_im_[l]);
  }
}

void DiagonalStack::import_state(const RecurrentState& state) {
  // Shapes come from the freshly reset state: a checkpoint of another shape is refused whole.
  reset_state();
  std::vector<DiagonalLayer::State> restored = state_;
  std::vector<Eigen::MatrixXd> re = tangent_re_, im = tangent_im_;
  const auto complex = [&](const std::string& name, Index rows, Index cols) {
    const Eigen::MatrixXd real = state_array(state, name + ".re", rows, cols);
    const Eigen::MatrixXd imag = state_array(state, name + ".im", rows, cols);
    Eigen::MatrixXcd z(rows, cols);
    z.real() = real;
    z.imag() = imag;
    return z;
  };
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const std::string at = "layer" + std::to_string(l) + ".";
    DiagonalLayer::State& s = restored[l];
    s.h = complex(at + "h", s.h.size(), 1);
    s.s_lambda = complex(at + "s_lambda", s.s_lambda.size(), 1);
    s.s_b = complex(at + "s_b", s.s_b.rows(), s.s_b.cols());
    re[l] = state_array(state, at + "tangent.re", re[l].rows(), re[l].cols());
    im[l] = state_array(state, at + "tangent.im", im[l].rows(), im[l].cols());
  }
  state_ = std::move(restored);
  tangent_re_ = std::move(re);
  tangent_im_ = std::move(im);
}

StabilityReport DiagonalStack::project(double margin) {
  // |lam| < 1 holds by construction; the projection keeps a margin so sensitivities, which
  // decay like |lam|^t, stay well conditioned: nu is raised to log(-log(1 - margin)).
  StabilityReport report;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    report.changed |= layers_[l].project(theta_.data() + layer_offset_[l], 1.0 - margin);
  }
  if (report.changed) on_theta_changed();
  report.spectral_radius = max_modulus();
  return report;
}

}  // namespace kwm
