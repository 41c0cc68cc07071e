// The LM learner registry. To add a learner: include its header, add one entry to kLearners
// (its learner.type and its make_xxx(const YAML::Node&, const GptConfig&, std::uint64_t,
// LmCollectives) function). Nothing else changes.
#include "core/lm/learners/learner_factory.hpp"

#include <stdexcept>

#include "core/lm/learners/adamw_learner.hpp"
#include "core/lm/learners/ensemble_learner.hpp"
#include "core/lm/learners/kwm_linearized_learner.hpp"
#include "core/lm/learners/mezo_learner.hpp"
#include "core/lm/learners/rls_head_learner.hpp"

namespace kwm::lm {
namespace {

using MakeLearner = std::unique_ptr<LanguageLearner> (*)(const YAML::Node&, const GptConfig&,
                                                         std::uint64_t, LmCollectives);

struct Registration {
  const char* type;
  MakeLearner make;
};

// ---- registration point: one line per learner ----
const Registration kLearners[] = {
    {"rls-head", &make_rls_head_learner},
    {"kwm-linearized", &make_kwm_linearized_learner},
    {"kwm-ensemble", &make_ensemble_learner},
    {"adamw", &make_adamw_learner},
    {"mezo", &make_mezo_learner},
};

}  // namespace

std::vector<std::string> language_learner_types() {
  std::vector<std::string> types;
  for (const auto& r : kLearners) types.emplace_back(r.type);
  return types;
}

std::unique_ptr<LanguageLearner> make_language_learner(const YAML::Node& learner,
                                                       const GptConfig& model, std::uint64_t seed,
                                                       LmCollectives collectives) {
  if (!learner || !learner.IsMap() || !learner["type"])
    throw std::invalid_argument("config key learner.type is missing");
  std::string type;
  try {
    type = learner["type"].as<std::string>();
  } catch (const YAML::Exception&) {
    throw std::invalid_argument("config key learner.type must be a string");
  }
  std::string known;
  for (const auto& r : kLearners) {
    if (type == r.type) return r.make(learner, model, seed, std::move(collectives));
    known += (known.empty() ? "" : ", ") + std::string(r.type);
  }
  throw std::invalid_argument("config key learner.type: unknown learner '" + type +
                              "'; expected one of: " + known);
}

}  // namespace kwm::lm
