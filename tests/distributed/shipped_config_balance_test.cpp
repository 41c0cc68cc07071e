// Placement balance of every shipped sequence config (configs/*.yaml with a Kalman sequence
// learner: sensitivity-dekf, dense-ekf, diagonal-ekf), as kwm train builds it: the run config is
// parsed by the launcher's parser, the model gets its input and output widths from the data
// section, the learner its blocks; LPT places them on 2, 3 and 4 ranks. The
// issue's bound: the most loaded rank holds at most 1.2 x the mean cost. Configs that cannot meet
// it with their validation-selected blocking are listed in kExempt with the reason
// (docs/distributed.md); for them the test checks that LPT reaches the best any placement can and
// that per-unit blocks, the documented way to run them on several ranks, do meet the bound.
#include <gtest/gtest.h>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

#include "core/learners/kalman/kalman_sequence_learner.hpp"
#include "core/models/model_io.hpp"
#include "distributed/placement.hpp"
#include "launch/training/run_config.hpp"

namespace kwm {
namespace {

constexpr double kBound = 1.2;

// Results-table configs (docs/results.md): their per-group blocking was selected on the
// validation split, and per-unit blocks score worse there, so they keep per-group blocks and
// have too few, too uneven blocks for 3-4 ranks (one block above the mean cost).
const std::map<std::string, std::string> kExempt = {
    {"sunspots.yaml", "results table, per_group selected on validation"},
    {"co2.yaml", "results table, per_group selected on validation (4 blocks)"},
    {"ecg.yaml", "results table, per_group selected on validation (4 blocks)"},
    {"elnino.yaml", "results table, per_group selected on validation (4 blocks)"},
    {"macrodata.yaml", "results table, per_group selected on validation (4 blocks)"},
};

struct Shipped {
  std::string name;
  launch::RunConfig config;
};

std::vector<Shipped> shipped_kalman_configs() {
  // Sorted as paths: RunConfig holds YAML::Node handles, whose assignment (as in a sort) writes
  // through to the nodes they refer to.
  std::vector<std::filesystem::path> paths;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(KWM_SOURCE_DIR) / "configs"))
    if (entry.path().extension() == ".yaml") paths.push_back(entry.path());
  std::sort(paths.begin(), paths.end());
  std::vector<Shipped> found;
  for (const auto& path : paths) {
    const YAML::Node root = YAML::LoadFile(path.string());
    // Sequence-model configs with a Kalman learner only: not the linear-Gaussian filter configs
    // of kwm filter, nor the language-model configs (their own learners and sections).
    const YAML::Node learner = root["learner"];
    if (!learner || !learner.IsMap() || !learner["type"] ||
        !is_kalman_learner(learner["type"].as<std::string>()))
      continue;
    launch::RunConfig config = launch::parse_run_config(root, path.string());
    found.push_back({path.filename().string(), std::move(config)});
  }
  return found;
}

// The learner's blocks as kwm train builds them (n_in, n_out from the data section).
std::vector<BlockCost> block_costs(const launch::RunConfig& config,
                                   const char* blocking = nullptr) {
  YAML::Node model = YAML::Clone(config.model);
  model["n_in"] = config.data.inputs.size();
  model["n_out"] = config.data.layout == "wide" ? std::size_t{1} : config.data.columns.size();
  YAML::Node learner = YAML::Clone(config.learner);
  if (blocking != nullptr) learner["blocking"] = blocking;
  const KalmanSequenceLearner built(make_model(model), kalman_learner_config(learner));
  std::vector<BlockCost> costs;
  for (const BlockShape& b : built.block_shapes()) costs.push_back({b.id, b.cost});
  return costs;
}

// No placement can do better than max(largest block, mean) / mean.
double best_possible(const std::vector<BlockCost>& costs, int ranks) {
  double total = 0, largest = 0;
  for (const auto& c : costs) total += c.cost, largest = std::max(largest, c.cost);
  return std::max(largest, total / ranks) / (total / ranks);
}

TEST(ShippedConfigBalance, EveryKalmanConfigWithinBoundOrDocumentedExempt) {
  const auto configs = shipped_kalman_configs();
  ASSERT_GE(configs.size(), 7u) << "expected the quickstart, distributed and results configs";
  for (const auto& [name, config] : configs) {
    const auto costs = block_costs(config);
    const bool exempt = kExempt.contains(name);
    for (int ranks : {2, 3, 4}) {
      const double imbalance = place_blocks(costs, ranks).imbalance();
      std::cout << name << ": " << costs.size() << " blocks, " << ranks << " ranks: imbalance "
                << imbalance << "\n";
      if (imbalance <= kBound) continue;
      EXPECT_TRUE(exempt) << name << " at " << ranks << " ranks: imbalance " << imbalance;
      // Exempt: LPT is optimal here (the largest block sets the makespan) ...
      EXPECT_NEAR(imbalance, best_possible(costs, ranks), 1e-12) << name << " " << ranks;
      // ... and per-unit blocks, with --set learner.blocking=per_unit, meet the bound.
      const double per_unit = place_blocks(block_costs(config, "per_unit"), ranks).imbalance();
      std::cout << name << ": per_unit, " << ranks << " ranks: imbalance " << per_unit << "\n";
      EXPECT_LE(per_unit, kBound) << name << " per_unit at " << ranks << " ranks";
    }
  }
}

TEST(ShippedConfigBalance, ExemptionsAreNeeded) {
  // An exemption must name a shipped config that misses the bound somewhere, or it goes stale.
  const auto configs = shipped_kalman_configs();
  for (const auto& [name, reason] : kExempt) {
    const auto it = std::find_if(configs.begin(), configs.end(),
                                 [&](const Shipped& s) { return s.name == name; });
    ASSERT_NE(it, configs.end()) << name << " is exempt but not shipped";
    const auto costs = block_costs(it->config);
    double worst = 0;
    for (int ranks : {2, 3, 4}) worst = std::max(worst, place_blocks(costs, ranks).imbalance());
    EXPECT_GT(worst, kBound) << name << " meets the bound: drop its exemption (" << reason << ")";
  }
}

}  // namespace
}  // namespace kwm
