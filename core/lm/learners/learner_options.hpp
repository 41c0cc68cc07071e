// Reading a `learner:` YAML section: every key checked against the learner's list and every bad
// value named ("learner.forgetting must be in (0, 1]; got 2"). Shared by all LM learners.
#pragma once

#include <yaml-cpp/yaml.h>

#include <set>
#include <stdexcept>
#include <string>

#include "core/kalman/config.hpp"

namespace kwm::lm {

[[noreturn]] inline void fail_option(const std::string& key, const std::string& what) {
  throw std::invalid_argument("config key " + key + " " + what);
}

// Throws std::invalid_argument naming `prefix.key` for a key outside `allowed`.
inline void check_option_keys(const YAML::Node& node, const std::string& prefix,
                              const std::set<std::string>& allowed) {
  if (!node) return;
  if (!node.IsMap()) fail_option(prefix, "must be a mapping");
  for (const auto& entry : node) {
    const auto key = entry.first.as<std::string>();
    if (!allowed.contains(key)) {
      std::string known;
      for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
      fail_option(prefix + "." + key, "is not known; expected one of: " + known);
    }
  }
}

template <typename V>
V read_option(const YAML::Node& node, const std::string& key, const std::string& prefix,
              V fallback) {
  if (!node || !node[key]) return fallback;
  try {
    return node[key].as<V>();
  } catch (const YAML::Exception&) {
    fail_option(prefix + "." + key, "has the wrong type; got '" + YAML::Dump(node[key]) + "'");
  }
}

// learner.jitter {initial_relative, growth, max_retries}: the escalating-jitter Cholesky.
kwm::JitterConfig read_jitter_option(const YAML::Node& learner, const std::string& prefix);
YAML::Node jitter_to_yaml(const kwm::JitterConfig& jitter);

}  // namespace kwm::lm
