// make_language_learner: the one place a `learner:` config section becomes a LanguageLearner.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/lm/gpt_config.hpp"
#include "core/lm/learners/language_learner.hpp"

namespace kwm::lm {

// Dispatches on learner["type"]; the learner reads (and checks) its own keys. Unknown type or
// key, or a bad value -> std::invalid_argument naming it.
std::unique_ptr<LanguageLearner> make_language_learner(const YAML::Node& learner,
                                                       const GptConfig& model, std::uint64_t seed,
                                                       LmCollectives collectives);

// The learner.type values make_language_learner accepts, in registration order.
std::vector<std::string> language_learner_types();

}  // namespace kwm::lm
