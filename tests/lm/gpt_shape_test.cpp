// Sizes, flatten order, config parsing and the errors bad input gets.
#include <gtest/gtest.h>

#include "core/lm/gpt_forward.hpp"
#include "tests/lm/lm_test_support.hpp"

namespace kwm::lm {
namespace {

GptConfig gpt2_small() {
  GptConfig c;
  c.vocab_size = 50257;
  c.context = 1024;
  c.d_model = 768;
  c.n_layers = 12;
  c.n_heads = 12;
  c.tied_head = true;
  c.head_bias = false;
  return c;
}

TEST(LmShape, Gpt2SmallHas124439808Parameters) {
  EXPECT_EQ(parameter_count(gpt2_small()), 124439808);
  auto with_bias = gpt2_small();
  with_bias.head_bias = true;
  EXPECT_EQ(parameter_count(with_bias), 124439808 + 50257);
  auto untied = gpt2_small();
  untied.tied_head = false;
  EXPECT_EQ(parameter_count(untied), 124439808 + 50257 * 768);
}

TEST(LmShape, SizeMatchesParameterCountForEveryHeadKind) {
  for (const bool tied : {true, false}) {
    for (const bool bias : {true, false}) {
      const auto config = testing::small_config(tied, bias);
      const auto p = GptParameters<double>::init(config, 1);
      EXPECT_EQ(p.size(), parameter_count(config)) << tied << bias;
      EXPECT_EQ(p.flatten().size(), p.size());
      EXPECT_EQ(p.head.weight.size(), tied ? 0 : config.vocab_size * config.d_model);
      EXPECT_EQ(p.head.bias.size(), bias ? config.vocab_size : 0);
      EXPECT_EQ(linear_layers(const_cast<GptParameters<double>&>(p)).size(),
                static_cast<std::size_t>(4 * config.n_layers + (tied ? 0 : 1)));
    }
  }
  GptConfig tiny;  // the defaults: vocab 256, context 64, d 64, 2 layers, d_mlp 256
  EXPECT_EQ(parameter_count(tiny), 256 * 64 + 64 * 64 + 2 * 49984 + 128 + 256);
}

TEST(LmShape, FlattenFollowsTheDocumentedOrderAndRoundTrips) {
  const auto config = testing::small_config(false);
  const auto p = testing::random_parameters(config, 3);
  const Vector<double> flat = p.flatten();
  const Eigen::Index d = config.d_model, v = config.vocab_size;
  EXPECT_EQ(flat.head(v * d), Eigen::Map<const Vector<double>>(p.token_embedding.data(), v * d));
  EXPECT_EQ(flat.segment(v * d, config.context * d),
            Eigen::Map<const Vector<double>>(p.position_embedding.data(), config.context * d));
  EXPECT_EQ(flat.segment((v + config.context) * d, d), p.blocks[0].ln1.gain);
  EXPECT_EQ(flat.tail(v), p.head.bias);
  const auto names = p.tensors();
  EXPECT_EQ(names[2].name, "blocks.0.ln1.gain");
  EXPECT_EQ(names[4].name, "blocks.0.qkv.weight");
  EXPECT_EQ(names.back().name, "head.bias");

  auto q = p.zeros_like();
  EXPECT_EQ(q.flatten(), Vector<double>::Zero(p.size()));
  q.unflatten(flat);
  EXPECT_EQ(q.flatten(), flat);
  EXPECT_EQ(q.blocks[1].proj.weight, p.blocks[1].proj.weight);
  EXPECT_THROW(q.unflatten(flat.head(flat.size() - 1)), std::invalid_argument);
  EXPECT_EQ(p.cast<float>().cast<double>().flatten(), flat.cast<float>().cast<double>());
}

TEST(LmShape, InitIsGpt2AndSeeded) {
  GptConfig config;
  config.n_layers = 4;
  config.init_std = 0.02;
  const auto p = GptParameters<double>::init(config, 7);
  EXPECT_EQ(p.flatten(), GptParameters<double>::init(config, 7).flatten());
  EXPECT_NE(p.flatten(), GptParameters<double>::init(config, 8).flatten());
  EXPECT_EQ(p.blocks[0].ln1.gain, Vector<double>::Ones(config.d_model));
  EXPECT_EQ(p.blocks[0].qkv.bias, Vector<double>::Zero(3 * config.d_model));
  const auto rms = [](const Matrix<double>& m) {
    return std::sqrt(m.squaredNorm() / double(m.size()));
  };
  EXPECT_NEAR(rms(p.token_embedding), 0.02, 0.001);
  EXPECT_NEAR(rms(p.blocks[0].fc.weight), 0.02, 0.001);
  // Residual projections: 0.02 / sqrt(2 * 4)
  EXPECT_NEAR(rms(p.blocks[0].proj.weight), 0.02 / std::sqrt(8.0), 0.0005);
  EXPECT_NEAR(rms(p.blocks[0].attn_out.weight), 0.02 / std::sqrt(8.0), 0.0008);
}

// Runs f, expecting std::invalid_argument whose message contains `needle`.
template <typename F>
void expect_invalid(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning '" << needle << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(LmShape, ForwardRejectsBadTokensAndLengths) {
  const auto config = testing::small_config(true);
  const auto p = GptParameters<double>::init(config, 1);
  auto batch = testing::random_batch(config, 2, 4, 5);
  batch.inputs[5] = config.vocab_size;
  expect_invalid([&] { forward(p, batch, nullptr); }, "token id 23 at position 5");
  batch.inputs[5] = -1;
  expect_invalid([&] { forward(p, batch, nullptr); }, "outside the vocabulary [0, 23)");
  const auto too_long = testing::random_batch(config, 1, config.context + 1, 5);
  expect_invalid([&] { forward(p, too_long, nullptr); }, "exceeds the model context 8");
  auto short_inputs = testing::random_batch(config, 2, 4, 5);
  short_inputs.inputs.pop_back();
  expect_invalid([&] { forward(p, short_inputs, nullptr); }, "expected batch * length = 8");
  const auto fine = testing::random_batch(config, 1, config.context, 5);
  EXPECT_NO_THROW(forward(p, fine, nullptr));
}

TEST(LmShape, ConfigParsesEveryKeyAndRoundTrips) {
  const auto node = YAML::Load(
      "{vocab_size: 50, context: 16, d_model: 24, n_layers: 3, n_heads: 6, d_mlp: 40, "
      "tied_head: false, head_bias: false, layer_norm_eps: 1.0e-6, init_std: 0.01}");
  const GptConfig c = parse_gpt_config(node);
  EXPECT_EQ(c.vocab_size, 50);
  EXPECT_EQ(c.context, 16);
  EXPECT_EQ(c.d_model, 24);
  EXPECT_EQ(c.n_layers, 3);
  EXPECT_EQ(c.n_heads, 6);
  EXPECT_EQ(c.mlp_width(), 40);
  EXPECT_FALSE(c.tied_head);
  EXPECT_FALSE(c.head_bias);
  EXPECT_EQ(c.layer_norm_eps, 1e-6);
  EXPECT_EQ(c.init_std, 0.01);
  const GptConfig again = parse_gpt_config(to_yaml(c));
  EXPECT_EQ(parameter_count(again), parameter_count(c));
  EXPECT_EQ(again.layer_norm_eps, c.layer_norm_eps);
  EXPECT_EQ(parse_gpt_config(YAML::Load("{d_model: 32}")).mlp_width(), 128);
}

TEST(LmShape, ConfigErrorsNameTheKey) {
  const auto parse = [](const std::string& text) {
    return [text] { parse_gpt_config(YAML::Load(text)); };
  };
  expect_invalid(parse("{d_model: 30, n_heads: 4}"),
                 "model.d_model must be divisible by model.n_heads");
  expect_invalid(parse("{n_layers: -2}"), "model.n_layers must be a positive integer; got -2");
  expect_invalid(parse("{vocab_size: 0}"), "model.vocab_size");
  expect_invalid(parse("{d_mlp: -1}"), "model.d_mlp");
  expect_invalid(parse("{layer_norm_eps: 0}"), "model.layer_norm_eps");
  expect_invalid(parse("{init_std: -0.1}"), "model.init_std");
  expect_invalid(parse("{n_head: 4}"), "model.n_head is not known");
  expect_invalid(parse("{context: many}"), "model.context has the wrong type");
  expect_invalid(parse("[1, 2]"), "model must be a mapping");
}

}  // namespace
}  // namespace kwm::lm
