// Serialisation: YAML round trips are bit-exact for theta, normalisation and config, a reloaded
// model predicts bit-identically, and bad files and configs are reported by key.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "core/models/base64.hpp"
#include "core/models/model_io.hpp"
#include "tests/models/model_test_support.hpp"

namespace kwm {
namespace {

bool bitwise_equal(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  // memcmp must not see the null data() of an empty vector.
  return a.size() == b.size() &&
         (a.size() == 0 || std::memcmp(a.data(), b.data(),
                                       static_cast<std::size_t>(a.size()) * sizeof(double)) == 0);
}

// Theta with awkward values: subnormals, signed zero, long mantissas.
Eigen::VectorXd awkward_theta(Index size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::VectorXd theta(size);
  for (Index i = 0; i < size; ++i) theta(i) = normal(rng) / 3.0;
  theta(0) = -0.0;
  theta(1) = 4.9e-324;
  theta(2) = 0.1 + 0.2;
  return theta;
}

void expect_round_trip(SequenceModel& model, Index n_in, Index n_out) {
  model.set_theta(awkward_theta(model.parameter_count(), 3));
  const test::Sequence s = test::random_sequence(40, n_in, n_out, 2);
  Eigen::MatrixXd u(40, n_in), y(40, n_out);
  for (Index t = 0; t < 40; ++t) {
    if (n_in > 0) u.row(t) = 3.0 * s.u[static_cast<std::size_t>(t)].transpose().array() + 1.0 / 3.0;
    y.row(t) = 7.0 * s.y[static_cast<std::size_t>(t)].transpose().array() - 1.0 / 7.0;
  }
  model.set_normalization(Normalization::fit(u, y));

  const std::string text = model_to_yaml(model);
  const std::unique_ptr<SequenceModel> loaded = model_from_yaml(text);
  EXPECT_EQ(loaded->type_name(), model.type_name());
  EXPECT_TRUE(bitwise_equal(loaded->theta(), model.theta()));
  const Normalization& a = model.normalization();
  const Normalization& b = loaded->normalization();
  EXPECT_TRUE(bitwise_equal(a.input.mean, b.input.mean));
  EXPECT_TRUE(bitwise_equal(a.input.scale, b.input.scale));
  EXPECT_TRUE(bitwise_equal(a.output.mean, b.output.mean));
  EXPECT_TRUE(bitwise_equal(a.output.scale, b.output.scale));
  EXPECT_EQ(model_to_yaml(*loaded), text);

  // Same bits in, same bits out.
  const test::Trajectory original = test::run(model, s);
  const test::Trajectory reloaded = test::run(*loaded, s);
  for (std::size_t t = 0; t < s.u.size(); ++t) {
    EXPECT_TRUE(bitwise_equal(original.yhat[t], reloaded.yhat[t]));
    EXPECT_TRUE(original.jacobian[t] == reloaded.jacobian[t]);
  }
}

TEST(ModelIo, InnovationSsmRoundTripsBitForBit) {
  InnovationSsmConfig c;
  c.n_in = 2;
  c.n_out = 3;
  c.output_lags = 1;
  c.states = 4;
  c.initial_radius = 0.1 + 0.2;
  c.seed = 18446744073709551615ull;
  InnovationSsm model(c);
  expect_round_trip(model, 2, 3);
}

TEST(ModelIo, DiagonalStackRoundTripsBitForBit) {
  DiagonalStackConfig c;
  c.n_in = 0;
  c.n_out = 2;
  c.output_lags = 2;
  c.width = 5;
  c.states = 3;
  c.layers = 2;
  c.mixer = MixerKind::mlp;
  c.mixer_hidden = 7;
  c.sensitivity = SensitivityMode::layer_local;
  c.max_phase = 0.1;
  DiagonalStack model(c);
  expect_round_trip(model, 0, 2);
  const YAML::Node config = model_config(model);
  EXPECT_EQ(config["mixer"].as<std::string>(), "mlp");
  EXPECT_EQ(config["sensitivity"].as<std::string>(), "layer_local");
}

TEST(ModelIo, FileRoundTrip) {
  DiagonalStack model(DiagonalStackConfig{});
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("kwm_model_io_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
       ".yaml");
  save_model(model, path);
  const std::unique_ptr<SequenceModel> loaded = load_model(path);
  std::filesystem::remove(path);
  EXPECT_TRUE(bitwise_equal(loaded->theta(), model.theta()));
  EXPECT_THROW(load_model(path), std::runtime_error);
}

TEST(ModelIo, ConfigErrorsNameTheKey) {
  try {
    make_model(YAML::Load("{type: diagonal_stack, widht: 8}"));
    FAIL() << "unknown key accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("widht"), std::string::npos);
  }
  EXPECT_THROW(make_model(YAML::Load("{type: transformer}")), std::invalid_argument);
  EXPECT_THROW(make_model(YAML::Load("{type: diagonal_stack, mixer: relu}")),
               std::invalid_argument);
  EXPECT_THROW(make_model(YAML::Load("{type: innovation_ssm, initial_radius: fast}")),
               std::invalid_argument);
  const auto model = make_model(YAML::Load("{type: innovation_ssm, n_in: 1, n_out: 2, states: 3}"));
  EXPECT_EQ(model->input_size(), 1);
  EXPECT_EQ(model->output_size(), 2);
}

TEST(ModelIo, TruncatedThetaIsRejected) {
  InnovationSsm model(InnovationSsmConfig{});
  YAML::Node root = YAML::Load(model_to_yaml(model));
  const std::string data = root["theta"]["data"].as<std::string>();
  root["theta"]["data"] = data.substr(0, data.size() - 12);
  YAML::Emitter out;
  out << root;
  EXPECT_THROW(model_from_yaml(out.c_str()), std::invalid_argument);
}

TEST(Base64, RoundTripsEveryTailLength) {
  for (std::size_t n = 0; n < 10; ++n) {
    std::vector<std::uint8_t> bytes;
    for (std::size_t i = 0; i < n; ++i) bytes.push_back(static_cast<std::uint8_t>(37 * i + 250));
    EXPECT_EQ(base64_decode(base64_encode(bytes.data(), n)), bytes);
  }
  EXPECT_EQ(base64_encode(reinterpret_cast<const std::uint8_t*>("foobar"), 6), "Zm9vYmFy");
  EXPECT_THROW(base64_decode("Zm9"), std::invalid_argument);
  EXPECT_THROW(base64_decode("Zm9*"), std::invalid_argument);
}

}  // namespace
}  // namespace kwm
