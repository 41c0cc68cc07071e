// Deep diagonal recurrent model (LRU / S4D-like):
//   z_0 = W_in [v_t; 1]                                   v_t = [u_t; y_{t-1}; ...; y_{t-p}]
//   layer l = 1..L:  y_l = DiagonalLayer_l(z_{l-1}),  z_l = z_{l-1} + mixer_l(y_l)   (residual)
//   yhat_t = W_out [z_L; 1]
// with exact forward-mode sensitivities through the whole stack, or the cheaper layer-local
// approximation (see SensitivityMode and docs/models.md).
#pragma once

#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "core/models/channel_mixer.hpp"
#include "core/models/diagonal_layer.hpp"
#include "core/models/sequence_model.hpp"

namespace kwm {

enum class SensitivityMode {
  // dh_l/dtheta for every parameter below layer l is carried through layer l's recurrence:
  // H_t is exact. Memory O(P_below * N) per layer, compute O(P_below * (N H + H^2)) per layer.
  exact,
  // Approximation: each layer's own recurrent sensitivities are exact, but the layers above it
  // contribute only their instantaneous Jacobian dz_l/dz_{l-1} = I + J_mix (Re(C B) + diag D),
  // dropping their recurrent paths. Cost O(n_out P + L (N H^2 + n_out H^2)) per step.
  layer_local,
};

std::string to_string(SensitivityMode mode);
// Throws std::invalid_argument listing the known modes.
SensitivityMode sensitivity_mode_from_string(const std::string& name);

struct DiagonalStackConfig {
  Index n_in = 0;         // exogenous inputs u
  Index n_out = 1;        // observed channels y
  Index output_lags = 0;  // past observations appended to the input
  Index width = 16;       // H, channels between layers
  Index states = 16;      // N, complex states per layer
  Index layers = 2;       // L >= 1
  MixerKind mixer = MixerKind::glu;
  Index mixer_hidden = 0;  // hidden width of the mlp mixer; 0 means width
  SensitivityMode sensitivity = SensitivityMode::exact;
  double min_radius = 0.9;  // initial |lam| range, 0 < min <= max < 1
  double max_radius = 0.999;
  double max_phase = std::numbers::pi;  // initial arg(lam) in [0, max_phase]
  std::uint64_t seed = 1;

  // Throws std::invalid_argument naming the offending key.
  void validate() const;
  Index hidden() const { return mixer_hidden > 0 ? mixer_hidden : width; }
};

// theta layout (groups in order; matrices row-major, unit = row):
//   "input"            input           H units of [W_in_i. (n_v), b_in_i]
//   "layer<l>.recurrence" recurrence   N units of [nu, theta, Re B_n., Im B_n., Re C_.n, Im C_.n]
//   "layer<l>.skip"    feedthrough     H entries of D
//   "layer<l>.mixer" | ".mixer_in", ".mixer_out"   mixer (see channel_mixer.hpp)
//   "readout"          linear_readout  n_out units of [W_out_i. (H), b_out_i]; exactly linear
// Parameters below layer l are exactly the prefix theta[0, offset of layer l).
class DiagonalStack final : public SequenceModel {
 public:
  explicit DiagonalStack(const DiagonalStackConfig& config);

  std::string type_name() const override { return "diagonal_stack"; }
  const DiagonalStackConfig& config() const { return config_; }
  const DiagonalLayer& layer(Index l) const { return layers_[static_cast<std::size_t>(l)]; }
  // Largest |lam| over all layers.
  double max_modulus() const;

 private:
  void on_theta_changed() override;
  void reset_state() override;
  void export_state(RecurrentState& state) const override;
  void import_state(const RecurrentState& state) override;
  void predict(const Eigen::VectorXd& input, LinearizedPrediction& prediction) override;
  void commit(const Eigen::VectorXd& y) override;
  StabilityReport project(double margin) override;

  void readout_jacobian(const Eigen::VectorXd& z_top, LinearizedPrediction& prediction) const;
  void exact_jacobian(LinearizedPrediction& prediction);
  void layer_local_jacobian(LinearizedPrediction& prediction) const;

  DiagonalStackConfig config_;
  Index n_v_;
  std::vector<DiagonalLayer> layers_;
  std::vector<ChannelMixer> mixers_;
  std::vector<Index> layer_offset_, mixer_offset_;
  Index readout_offset_ = 0;
  Eigen::MatrixXd w_in_, w_out_;  // H x (n_v + 1), n_out x (H + 1)

  // Committed state at t and the pending state of the last predict (t + 1's committed state).
  std::vector<DiagonalLayer::State> state_, pending_;
  // Exact mode: dh_l / dtheta[0, layer_offset_[l]), real and imaginary parts.
  std::vector<Eigen::MatrixXd> tangent_re_, tangent_im_, pending_re_, pending_im_;

  // Saved by predict for the Jacobians.
  Eigen::VectorXd input_aug_;                 // [v; 1]
  std::vector<Eigen::VectorXd> layer_input_;  // z_{l-1}
  std::vector<ChannelMixer::Activation> mixer_act_;
  std::vector<Eigen::MatrixXd> mixer_jacobian_;  // da_l/dy_l
  Eigen::VectorXd z_top_;
};

}  // namespace kwm
