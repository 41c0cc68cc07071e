// The C++ GPT against the same architecture written in PyTorch (tests/lm/torch_reference.py,
// fp64): logits, summed loss, every parameter's transposed Jacobian (== -d loss / d theta) and
// every linear layer's J_z^T e (== -d loss / dz) agree to 1e-6 relative to each tensor's largest
// entry (measured ~1e-13). Skipped when torch cannot be imported, unless KWM_REQUIRE_TORCH=1.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/lm/gpt_backward.hpp"
#include "tests/lm/lm_test_support.hpp"

namespace kwm::lm {
namespace {

namespace fs = std::filesystem;

constexpr double kTorchTolerance = 1e-6;
const char* const kPython = "/usr/bin/python3";

bool torch_importable() {
  const std::string command = std::string(kPython) + " -c 'import torch' > /dev/null 2>&1";
  return std::system(command.c_str()) == 0;
}

void write_f64(const fs::path& path, const double* data, Eigen::Index count) {
  std::ofstream out(path, std::ios::binary);
  // Little-endian hosts only (x86-64, aarch64): the raw bytes are the file format.
  out.write(reinterpret_cast<const char*>(data),
            static_cast<std::streamsize>(count * static_cast<Eigen::Index>(sizeof(double))));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

Matrix<double> read_f64(const fs::path& path, Eigen::Index rows, Eigen::Index cols) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("torch reference did not write " + path.string());
  const auto bytes = static_cast<Eigen::Index>(in.tellg());
  if (bytes != rows * cols * static_cast<Eigen::Index>(sizeof(double))) {
    throw std::runtime_error(path.string() + " has " + std::to_string(bytes) +
                             " bytes; expected a " + std::to_string(rows) + " x " +
                             std::to_string(cols) + " float64 matrix");
  }
  Matrix<double> m(rows, cols);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(m.data()), bytes);
  return m;
}

// max |a - b| / max |b|: the error relative to the tensor's scale.
double relative_error(const Matrix<double>& a, const Matrix<double>& b) {
  const double scale = b.cwiseAbs().maxCoeff();
  return (a - b).cwiseAbs().maxCoeff() / (scale > 0.0 ? scale : 1.0);
}

class TorchEquivalence : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (!torch_importable()) {
      const char* require = std::getenv("KWM_REQUIRE_TORCH");
      if (require != nullptr && std::string(require) == "1") {
        FAIL() << "KWM_REQUIRE_TORCH=1 but `" << kPython
               << " -c 'import torch'` fails: install python3-torch (launch/setup.sh does)";
      }
      GTEST_SKIP() << "PyTorch is not importable by " << kPython
                   << " (install python3-torch; set KWM_REQUIRE_TORCH=1 to make this a failure)";
    }
    std::string pattern = (fs::temp_directory_path() / "kwm_lm_torch_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "cannot create a temporary directory";
    dir = pattern;
  }
  void TearDown() override {
    if (!dir.empty()) {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  }
  fs::path dir;
};

TEST_P(TorchEquivalence, LogitsLossAndTransposedJacobians) {
  GptConfig config;  // the tiny model: vocab 256, d 64, 4 heads, context 64
  config.n_layers = 2;
  config.tied_head = GetParam();
  const auto params = testing::random_parameters(config, 21, 0.1);
  const auto batch = testing::random_batch(config, 3, 64, 22);

  nlohmann::json manifest;
  manifest["config"] = {{"d_model", config.d_model},
                        {"n_heads", config.n_heads},
                        {"n_layers", config.n_layers},
                        {"tied_head", config.tied_head},
                        {"layer_norm_eps", config.layer_norm_eps}};
  manifest["batch"] = batch.batch;
  manifest["length"] = batch.length;
  manifest["inputs"] = batch.inputs;
  manifest["targets"] = batch.targets;
  fs::create_directories(dir / "params");
  for (const auto& t : params.tensors()) {
    manifest["tensors"].push_back({{"name", t.name}, {"rows", t.rows}, {"cols", t.cols}});
    write_f64(dir / "params" / (t.name + ".f64"), t.data, t.size());
  }
  auto mutable_params = params;
  std::vector<std::string> sites;
  for (const auto& site : linear_layers(mutable_params)) sites.push_back(site.name);
  if (config.tied_head) sites.push_back("head");
  manifest["linear_sites"] = sites;
  std::ofstream(dir / "manifest.json") << manifest.dump();

  const std::string command =
      std::string(kPython) + " " + KWM_SOURCE_DIR + "/tests/lm/torch_reference.py " + dir.string();
  ASSERT_EQ(std::system(command.c_str()), 0) << "torch reference failed: " << command;

  ForwardCache<double> cache;
  const Matrix<double> logits = forward(params, batch, &cache);
  const auto loss = cross_entropy(logits, batch.targets);
  const auto tj = transpose_jacobian(params, cache, output_innovation(loss, batch.targets));
  const fs::path out = dir / "torch";

  double worst = relative_error(logits, read_f64(out / "logits.f64", logits.rows(), logits.cols()));
  EXPECT_LT(worst, kTorchTolerance) << "logits";
  const double torch_loss = read_f64(out / "loss.f64", 1, 1)(0, 0);
  EXPECT_NEAR(loss.total_nll, torch_loss, kTorchTolerance * std::abs(torch_loss)) << "loss";
  for (const auto& t : tj.parameters.tensors()) {
    const Eigen::Map<const Matrix<double>> ours(t.data, t.rows, t.cols);
    const double error =
        relative_error(-ours, read_f64(out / "grad" / (t.name + ".f64"), t.rows, t.cols));
    EXPECT_LT(error, kTorchTolerance) << t.name;
    worst = std::max(worst, error);
  }
  for (std::size_t s = 0; s < sites.size(); ++s) {
    const auto& ours = tj.linear_output[s];
    const double error = relative_error(
        -ours, read_f64(out / "zgrad" / (sites[s] + ".f64"), ours.rows(), ours.cols()));
    EXPECT_LT(error, kTorchTolerance) << sites[s] << " output";
    worst = std::max(worst, error);
  }
  std::cout << "[ measured ] worst relative difference to torch: " << worst << "\n";
}

INSTANTIATE_TEST_SUITE_P(Heads, TorchEquivalence, ::testing::Bool(), [](const auto& test_case) {
  return std::string(test_case.param ? "Tied" : "Untied");
});

}  // namespace
}  // namespace kwm::lm
