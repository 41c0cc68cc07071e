// Key checks shared by the run-config parsers (time series and language models): an unknown key
// or a value of the wrong type is a UserError naming the file and the full key path.
#pragma once

#include <yaml-cpp/yaml.h>

#include <set>
#include <string>

#include "launch/user_error.hpp"

namespace kwm::launch {

[[noreturn]] inline void fail_config(const std::string& source, const std::string& what) {
  throw UserError(source + ": " + what);
}

// Every key of the mapping `node` (at `prefix`, "" for the root) must be in `allowed`.
inline void check_config_keys(const YAML::Node& node, const std::string& source,
                              const std::string& prefix, const std::set<std::string>& allowed) {
  if (!node) return;
  if (!node.IsMap()) fail_config(source, "key '" + prefix + "' must be a mapping");
  for (const auto& entry : node) {
    // A null or non-scalar key (`? [a]: 1`, `{!x : 1}`) names nothing we know (a fuzz finding).
    if (!entry.first.IsScalar())
      fail_config(source, "key '" + prefix + "' holds a key that is not a plain name: '" +
                              YAML::Dump(entry.first) + "'");
    const auto key = entry.first.as<std::string>();
    if (allowed.contains(key)) continue;
    std::string known;
    for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
    fail_config(source, "unknown key '" + (prefix.empty() ? "" : prefix + ".") + key +
                            "'; expected one of: " + known);
  }
}

// node[key] as V, or `fallback` when absent; a value of the wrong type names the key.
template <typename V>
V read_config(const YAML::Node& node, const std::string& key, const std::string& source,
              const std::string& prefix, V fallback) {
  if (!node || !node[key]) return fallback;
  try {
    return node[key].as<V>();
  } catch (const YAML::Exception&) {
    fail_config(source, "key '" + prefix + "." + key + "' has the wrong type; got '" +
                            YAML::Dump(node[key]) + "'");
  }
}

}  // namespace kwm::launch
