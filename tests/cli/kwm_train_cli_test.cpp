// End-to-end tests of `kwm train` and `kwm eval` on the real sunspot series: the --json contract,
// the run directory, bitwise determinism, eval reproducing the run's test scores, and exit code 2
// with one line on stderr (and no run directory) for bad input.
#include <nlohmann/json.hpp>

#include "tests/cli/kwm_cli_fixture.hpp"

namespace {

using namespace kwm_cli;

class KwmTrain : public KwmCliTest {
 protected:
  // A small run config on data/sunspots.csv; `learner` is the learner section's YAML body.
  std::string config(const std::string& learner, const std::string& extra_data = "") const {
    return write("run.yaml", "data:\n  path: " + data_file("sunspots.csv") +
                                 "\n  columns: [SUNACTIVITY]\n" + extra_data +
                                 "model: {type: diagonal_stack, output_lags: 2, width: 4, "
                                 "states: 4, layers: 1, mixer: glu}\n"
                                 "learner: " +
                                 learner + "\ntrain: {run_dir: run}\n");
  }
  nlohmann::json last_json(const KwmRun& r) const {
    const auto lines = lines_of(r.out);
    if (lines.empty()) throw std::runtime_error("no stdout; stderr: " + r.err);
    return nlohmann::json::parse(lines.back());
  }
  void expect_user_error(const std::string& args, const std::string& expected) const {
    const KwmRun r = kwm(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\nstderr: " << r.err;
    const auto err = lines_of(r.err);
    ASSERT_EQ(err.size(), 1u) << r.err;
    EXPECT_EQ(err[0].rfind("error: ", 0), 0u) << err[0];
    EXPECT_NE(err[0].find(expected), std::string::npos) << "stderr: " << err[0];
    EXPECT_FALSE(fs::exists(dir_ / "run"));
  }
};

TEST_F(KwmTrain, SinglePassWritesRunDirectoryAndJson) {
  const KwmRun r = kwm("train --config " + config("{type: sensitivity-dekf}") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = last_json(r);
  EXPECT_EQ(j["command"], "train");
  EXPECT_EQ(j["learner"], "sensitivity-dekf");
  EXPECT_EQ(j["passes"], 1);
  EXPECT_NE(j["jacobian_source"].get<std::string>().find("reverse-free"), std::string::npos);
  EXPECT_EQ(j["steps"]["train"], 216);
  EXPECT_EQ(j["test"]["count"], 62);
  EXPECT_GT(j["test"]["mse"].get<double>(), 0.0);
  for (const char* f : {"config.yaml", "metrics.jsonl", "model.yaml", "predictions.csv"})
    EXPECT_TRUE(fs::exists(dir_ / "run" / f)) << f;
  // metrics.jsonl: a start line, windows of training, then validation and test.
  const auto metrics = lines_of(slurp(dir_ / "run" / "metrics.jsonl"));
  ASSERT_GE(metrics.size(), 4u);
  EXPECT_EQ(nlohmann::json::parse(metrics.front())["event"], "start");
  EXPECT_EQ(nlohmann::json::parse(metrics.back())["split"], "test");
  EXPECT_EQ(lines_of(slurp(dir_ / "run" / "predictions.csv")).size(), 310u);  // header + 309
}

TEST_F(KwmTrain, TwoRunsAreBitwiseIdenticalAndEvalReproducesTheTestScores) {
  const std::string cfg = config("{type: sensitivity-dekf, blocking: per_unit}");
  ASSERT_EQ(kwm("train --config " + cfg + " --quiet").exit_code, 0);
  const std::string first = slurp(dir_ / "run" / "model.yaml");
  const KwmRun second = kwm("train --config " + cfg + " --quiet --json");
  ASSERT_EQ(second.exit_code, 0);
  EXPECT_EQ(slurp(dir_ / "run" / "model.yaml"), first);

  const KwmRun e = kwm("eval --run-dir run --json");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const auto ej = last_json(e);
  EXPECT_EQ(ej["command"], "eval");
  EXPECT_EQ(ej["mse"], last_json(second)["test"]["mse"]);
  EXPECT_EQ(ej["nll"], last_json(second)["test"]["nll"]);

  // Any CSV series: the same file, scored whole.
  const KwmRun whole =
      kwm("eval --run-dir run --data " + data_file("sunspots.csv") + " --out p.csv --json");
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  EXPECT_EQ(last_json(whole)["metrics"]["overall"]["count"], 309);
  EXPECT_TRUE(fs::exists(dir_ / "p.csv"));
}

TEST_F(KwmTrain, EveryLearnerTypeRuns) {
  for (const std::string learner :
       {"{type: dense-ekf}", "{type: diagonal-ekf}", "{type: adam-sensitivity}",
        "{type: ar, order: 3}", "{type: persistence}"}) {
    const KwmRun r = kwm("train --config " + config(learner) + " --quiet --json");
    ASSERT_EQ(r.exit_code, 0) << learner << ": " << r.err;
    EXPECT_TRUE(std::isfinite(last_json(r)["test"]["mse"].get<double>())) << learner;
  }
}

TEST_F(KwmTrain, GatingLimitsTheDamageOfOutliers) {
  const std::string outliers = "  corrupt: {outlier_fraction: 0.05, outlier_scale: 10}\n";
  auto mse = [&](const std::string& learner) {
    const KwmRun r = kwm("train --config " + config(learner, outliers) + " --quiet --json");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return last_json(r)["test"]["mse"].get<double>();
  };
  // R = 0.3 (normalised units): the outliers are ~30 sd of the noise, the gate's job.
  const double ungated = mse("{type: sensitivity-dekf, noise: {variance: 0.3}}");
  const double gated =
      mse("{type: sensitivity-dekf, noise: {variance: 0.3}, gating: {mode: reject}}");
  EXPECT_LT(gated, ungated);
}

TEST_F(KwmTrain, OverridesApply) {
  const KwmRun r = kwm("train --config " + config("{type: sensitivity-dekf}") +
                       " --set learner.type=diagonal-ekf --set train.run_dir=other --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_json(r)["learner"], "diagonal-ekf");
  EXPECT_TRUE(fs::exists(dir_ / "other" / "model.yaml"));
}

TEST_F(KwmTrain, BadInputExitsTwoAndWritesNothing) {
  expect_user_error("train --config missing.yaml", "missing.yaml: no such file");
  expect_user_error("train --config " + write("bad.yaml", "data: [unclosed\n"), "malformed YAML");
  expect_user_error("train --config " + config("{type: magic}"), "learner.type");
  expect_user_error("train --config " + config("{type: dense-ekf, initial_variance: -1}"),
                    "learner.initial_variance");
  expect_user_error("train --config " + config("{type: dense-ekf, bogus: 1}"), "learner.bogus");
  expect_user_error("train --config " + config("{type: dense-ekf}") + " --set data.columns=[NOPE]",
                    "NOPE");
  expect_user_error("train --config " + config("{type: dense-ekf}") + " --set data.path=nope.csv",
                    "nope.csv");
  expect_user_error("train --config " + config("{type: dense-ekf}") + " --set model.layers=0",
                    "layers");
  expect_user_error("eval --run-dir nowhere", "nowhere");
}

TEST_F(KwmTrain, Help) {
  for (const char* cmd : {"train --help", "eval --help"}) {
    const KwmRun r = kwm(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("--json"), std::string::npos) << cmd;
  }
}

}  // namespace
