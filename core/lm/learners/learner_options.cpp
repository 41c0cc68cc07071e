// Shared option readers for the LM learners.
#include "core/lm/learners/learner_options.hpp"

namespace kwm::lm {

kwm::JitterConfig read_jitter_option(const YAML::Node& learner, const std::string& prefix) {
  kwm::JitterConfig j;
  const YAML::Node node = learner ? learner["jitter"] : YAML::Node();
  const std::string p = prefix + ".jitter";
  check_option_keys(node, p, {"initial_relative", "growth", "max_retries"});
  j.initial_relative = read_option(node, "initial_relative", p, j.initial_relative);
  j.growth = read_option(node, "growth", p, j.growth);
  j.max_retries = read_option(node, "max_retries", p, j.max_retries);
  try {
    j.validate();
  } catch (const std::invalid_argument& error) {
    fail_option(p, std::string("is invalid: ") + error.what());
  }
  return j;
}

YAML::Node jitter_to_yaml(const kwm::JitterConfig& jitter) {
  YAML::Node n;
  n["initial_relative"] = jitter.initial_relative;
  n["growth"] = jitter.growth;
  n["max_retries"] = jitter.max_retries;
  return n;
}

}  // namespace kwm::lm
