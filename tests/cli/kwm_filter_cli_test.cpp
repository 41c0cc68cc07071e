// End-to-end tests of `kwm filter`: the --json contract, the Nile log-likelihood, and exit code 2
// with one line on stderr (and no output file) for every kind of bad input.
#include <nlohmann/json.hpp>

#include "tests/cli/kwm_cli_fixture.hpp"

namespace {

using namespace kwm_cli;

std::string nile_csv() { return data_file("nile.csv"); }

const std::string kNileModel = std::string(KWM_SOURCE_DIR) + "/configs/nile_local_level.yaml";

class KwmFilter : public KwmCliTest {
 protected:
  // Exit 2, exactly one line on stderr that starts with "error: " and contains `expected`,
  // and no output file.
  void expect_user_error(const std::string& args, const std::string& expected) const {
    const KwmRun r = kwm(args + " --out out.csv");
    EXPECT_EQ(r.exit_code, 2) << args << "\nstderr: " << r.err;
    const auto err = lines_of(r.err);
    ASSERT_EQ(err.size(), 1u) << r.err;
    EXPECT_EQ(err[0].rfind("error: ", 0), 0u) << err[0];
    EXPECT_NE(err[0].find(expected), std::string::npos) << "stderr: " << err[0];
    EXPECT_FALSE(fs::exists(dir_ / "out.csv"));
    for (const auto& entry : fs::directory_iterator(dir_)) {
      EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos);
    }
  }
};

TEST_F(KwmFilter, NileJsonLastLineAndLoglik) {
  const KwmRun r = kwm("filter --model '" + kNileModel + "' --data '" + nile_csv() +
                       "' --smooth --out nile.csv --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = lines_of(r.out);
  ASSERT_FALSE(lines.empty());
  const auto result = nlohmann::json::parse(lines.back());
  EXPECT_EQ(result["command"], "filter");
  // Exact diffuse local level at DK's MLE: statsmodels' convention, and KFAS's (-632.54).
  EXPECT_NEAR(result["loglik"].get<double>(), -633.4645636488783, 1e-8);
  EXPECT_NEAR(result["loglik_kfas"].get<double>(), -632.5456251156736, 1e-8);
  EXPECT_EQ(result["n_obs"], 100);
  EXPECT_EQ(result["n_missing"], 0);
  EXPECT_EQ(result["diffuse_steps"], 1);
  EXPECT_EQ(result["filtered"], "nile.csv");
  EXPECT_EQ(result["smoothed"], "nile.csv");
  const auto csv = lines_of(slurp(dir_ / "nile.csv"));
  ASSERT_EQ(csv.size(), 101u);
  EXPECT_EQ(csv[0],
            "t,filtered_mean_level,filtered_var_level,smoothed_mean_level,smoothed_var_level");
  EXPECT_EQ(csv[1].rfind("0,1120,", 0), 0u) << csv[1];  // the first filtered level is y_0
}

TEST_F(KwmFilter, DefaultOutputNameAndHumanSummary) {
  const KwmRun r = kwm("filter --model '" + kNileModel + "' --data '" + nile_csv() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("loglik -633.4645"), std::string::npos) << r.out;
  const auto csv = lines_of(slurp(dir_ / "nile.filtered.csv"));
  ASSERT_EQ(csv.size(), 101u);
  EXPECT_EQ(csv[0], "t,filtered_mean_level,filtered_var_level");
}

TEST_F(KwmFilter, MissingValuesAndInputs) {
  write("series.csv", "u,y\n1,0.5\n0,NA\n2,\n-1,1.5\n0.5,2.0\n");
  write("model.yaml", "F: 0.8\nH: 1\nQ: 0.5\nR: 0.2\nB: 0.3\ninputs: [u]\nx0: 0\nP0: 1\n");
  const KwmRun r = kwm("filter --model model.yaml --data series.csv --smooth --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto result = nlohmann::json::parse(lines_of(r.out).back());
  EXPECT_EQ(result["n_obs"], 3);
  EXPECT_EQ(result["n_missing"], 2);
  EXPECT_EQ(result["columns"], nlohmann::json::array({"y"}));
  EXPECT_EQ(result["filtered"], "series.filtered.csv");
  EXPECT_EQ(lines_of(slurp(dir_ / "series.filtered.csv")).size(), 6u);
}

TEST_F(KwmFilter, MalformedYaml) {
  write("model.yaml", "F: [[1, 0]\nH: 1\n");
  expect_user_error("filter --model model.yaml --data '" + nile_csv() + "'",
                    "model.yaml: malformed YAML at line");
}

TEST_F(KwmFilter, WrongShape) {
  write("model.yaml",
        "F: [[1, 0], [0, 1]]\nH: [[1, 0]]\nQ: [[1, 0], [0, 1], [0, 0]]\nR: 1\n"
        "init: diffuse\n");
  expect_user_error("filter --model model.yaml --data '" + nile_csv() + "' --column volume",
                    "model.yaml: key 'Q' must be a 2x2 matrix; got 3 rows");
}

TEST_F(KwmFilter, NonPositiveDefiniteR) {
  write("model.yaml", "F: 1\nH: [[1], [1]]\nQ: 1\nR: [[1, 2], [2, 1]]\ninit: diffuse\n");
  expect_user_error("filter --model model.yaml --data '" + nile_csv() + "' --column volume year",
                    "model.yaml: key 'R' must be positive definite");
}

TEST_F(KwmFilter, NonSymmetricQ) {
  write("model.yaml",
        "F: [[1, 0], [0, 1]]\nH: [[1, 0]]\nQ: [[1, 0.5], [0, 1]]\nR: 1\n"
        "init: diffuse\n");
  expect_user_error("filter --model model.yaml --data '" + nile_csv() + "' --column volume",
                    "model.yaml: key 'Q' must be symmetric");
}

TEST_F(KwmFilter, MissingModelFile) {
  expect_user_error("filter --model absent.yaml --data '" + nile_csv() + "'",
                    "model file absent.yaml not found");
}

TEST_F(KwmFilter, MissingDataFile) {
  expect_user_error("filter --model '" + kNileModel + "' --data absent.csv",
                    "data file absent.csv not found");
}

TEST_F(KwmFilter, MissingColumn) {
  expect_user_error("filter --model '" + kNileModel + "' --data '" + nile_csv() + "' --column flow",
                    "column 'flow' not found in " + nile_csv() + "; columns are: year, volume");
}

TEST_F(KwmFilter, UnparsableNumber) {
  write("data.csv", "year,volume\n1871,1120\n1872,abc\n");
  expect_user_error("filter --model '" + kNileModel + "' --data data.csv",
                    "data.csv line 3 column 'volume': cannot parse 'abc' as a number");
}

TEST_F(KwmFilter, TooManyColumnsForH) {
  expect_user_error(
      "filter --model '" + kNileModel + "' --data '" + nile_csv() + "' --column year volume",
      "H has 1 row but 2 observation columns were selected");
}

TEST_F(KwmFilter, MissingOutputFolder) {
  const KwmRun r = kwm("filter --model '" + kNileModel + "' --data '" + nile_csv() +
                       "' --out no/such/folder/out.csv");
  EXPECT_EQ(r.exit_code, 2);
  ASSERT_EQ(lines_of(r.err).size(), 1u) << r.err;
  EXPECT_EQ(lines_of(r.err)[0],
            "error: cannot write no/such/folder/out.csv: folder no/such/folder does not exist");
}

TEST_F(KwmFilter, JsonErrorLine) {
  const KwmRun r = kwm("filter --model absent.yaml --data '" + nile_csv() + "' --json");
  EXPECT_EQ(r.exit_code, 2);
  const auto result = nlohmann::json::parse(lines_of(r.out).back());
  EXPECT_EQ(result["command"], "filter");
  EXPECT_EQ(result["error"], "model file absent.yaml not found");
}

TEST_F(KwmFilter, Help) {
  const KwmRun top = kwm("--help");
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("filter"), std::string::npos) << top.out;
  const KwmRun sub = kwm("filter --help");
  EXPECT_EQ(sub.exit_code, 0);
  EXPECT_NE(sub.out.find("--model"), std::string::npos) << sub.out;
  EXPECT_NE(sub.out.find("--smooth"), std::string::npos) << sub.out;
  const KwmRun version = kwm("--version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("kwm ", 0), 0u) << version.out;
  const KwmRun none = kwm("");
  EXPECT_EQ(none.exit_code, 2);
}

}  // namespace
