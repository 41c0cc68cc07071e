// GptParameters: allocation, GPT-2 initialisation, the tensor list and flatten()/unflatten().
#include "core/lm/gpt_parameters.hpp"

#include <cmath>
#include <random>
#include <stdexcept>
#include <type_traits>

namespace kwm::lm {
namespace {

// The tensors of `p` (const or not) in flatten() order; empty tensors are skipped.
template <typename Value, typename Params>
std::vector<TensorView<Value>> collect(Params& p) {
  std::vector<TensorView<Value>> out;
  const auto add = [&out](const std::string& name, auto& tensor) {
    if (tensor.size() == 0) return;
    out.push_back({name, tensor.data(), tensor.rows(), tensor.cols()});
  };
  const auto add_linear = [&add](const std::string& name, auto& linear) {
    add(name + ".weight", linear.weight);
    add(name + ".bias", linear.bias);
  };
  const auto add_norm = [&add](const std::string& name, auto& norm) {
    add(name + ".gain", norm.gain);
    add(name + ".bias", norm.bias);
  };
  add("token_embedding", p.token_embedding);
  add("position_embedding", p.position_embedding);
  for (std::size_t i = 0; i < p.blocks.size(); ++i) {
    auto& b = p.blocks[i];
    const std::string prefix = "blocks." + std::to_string(i) + ".";
    add_norm(prefix + "ln1", b.ln1);
    add_linear(prefix + "qkv", b.qkv);
    add_linear(prefix + "attn_out", b.attn_out);
    add_norm(prefix + "ln2", b.ln2);
    add_linear(prefix + "fc", b.fc);
    add_linear(prefix + "proj", b.proj);
  }
  add_norm("ln_f", p.ln_f);
  add_linear("head", p.head);
  return out;
}

}  // namespace

template <typename T>
GptParameters<T> GptParameters<T>::zeros(const GptConfig& config) {
  validate(config);
  const Eigen::Index v = config.vocab_size, d = config.d_model, m = config.mlp_width();
  const auto linear = [](Eigen::Index out, Eigen::Index in) {
    return Linear<T>{Matrix<T>::Zero(out, in), Vector<T>::Zero(out)};
  };
  const auto norm = [d] { return LayerNormParams<T>{Vector<T>::Zero(d), Vector<T>::Zero(d)}; };
  GptParameters p;
  p.config = config;
  p.token_embedding = Matrix<T>::Zero(v, d);
  p.position_embedding = Matrix<T>::Zero(config.context, d);
  for (int i = 0; i < config.n_layers; ++i) {
    p.blocks.push_back(
        {norm(), linear(3 * d, d), linear(d, d), norm(), linear(m, d), linear(d, m)});
  }
  p.ln_f = norm();
  p.head.weight = config.tied_head ? Matrix<T>() : Matrix<T>::Zero(v, d);
  p.head.bias = config.head_bias ? Vector<T>::Zero(v) : Vector<T>();
  return p;
}

template <typename T>
GptParameters<T> GptParameters<T>::init(const GptConfig& config, std::uint64_t seed) {
  GptParameters p = zeros(config);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, config.init_std);
  // GPT-2: residual projections are scaled so the residual stream's variance does not grow
  // with depth (Radford et al. 2019, section 2.3).
  const double residual_scale = 1.0 / std::sqrt(2.0 * config.n_layers);
  for (auto& t : p.tensors()) {
    const auto ends_with = [&t](const std::string& suffix) {
      return t.name.size() >= suffix.size() &&
             t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with(".gain")) {
      std::fill(t.data, t.data + t.size(), T(1));
    } else if (ends_with(".bias")) {
      continue;  // zero
    } else {
      const bool residual = ends_with("attn_out.weight") || ends_with("proj.weight");
      const double scale = residual ? residual_scale : 1.0;
      for (Eigen::Index i = 0; i < t.size(); ++i) t.data[i] = static_cast<T>(scale * normal(rng));
    }
  }
  return p;
}

template <typename T>
std::int64_t GptParameters<T>::size() const {
  std::int64_t n = 0;
  for (const auto& t : tensors()) n += t.size();
  return n;
}

template <typename T>
Vector<T> GptParameters<T>::flatten() const {
  Vector<T> flat(size());
  Eigen::Index offset = 0;
  for (const auto& t : tensors()) {
    flat.segment(offset, t.size()) = Eigen::Map<const Vector<T>>(t.data, t.size());
    offset += t.size();
  }
  return flat;
}

template <typename T>
void GptParameters<T>::unflatten(const Vector<T>& flat) {
  if (flat.size() != size()) {
    throw std::invalid_argument("GptParameters::unflatten: vector has " +
                                std::to_string(flat.size()) + " entries, the model has " +
                                std::to_string(size()));
  }
  Eigen::Index offset = 0;
  for (auto& t : tensors()) {
    Eigen::Map<Vector<T>>(t.data, t.size()) = flat.segment(offset, t.size());
    offset += t.size();
  }
}

template <typename T>
GptParameters<T> GptParameters<T>::zeros_like() const {
  return zeros(config);
}

template <typename T>
std::vector<TensorView<T>> GptParameters<T>::tensors() {
  return collect<T>(*this);
}

template <typename T>
std::vector<TensorView<const T>> GptParameters<T>::tensors() const {
  return collect<const T>(*this);
}

template <typename T>
std::vector<LinearSite<T>> linear_layers(GptParameters<T>& p) {
  std::vector<LinearSite<T>> sites;
  for (std::size_t i = 0; i < p.blocks.size(); ++i) {
    const std::string prefix = "blocks." + std::to_string(i) + ".";
    sites.push_back({prefix + "qkv", &p.blocks[i].qkv});
    sites.push_back({prefix + "attn_out", &p.blocks[i].attn_out});
    sites.push_back({prefix + "fc", &p.blocks[i].fc});
    sites.push_back({prefix + "proj", &p.blocks[i].proj});
  }
  if (!p.config.tied_head) sites.push_back({"head", &p.head});
  return sites;
}

template struct GptParameters<double>;
template struct GptParameters<float>;
template std::vector<LinearSite<double>> linear_layers(GptParameters<double>&);
template std::vector<LinearSite<float>> linear_layers(GptParameters<float>&);

}  // namespace kwm::lm
