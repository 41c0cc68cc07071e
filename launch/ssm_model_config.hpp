// MODEL.yaml -> a validated linear-Gaussian state-space model plus the data columns it names.
// Format (matrices as nested lists of rows; a scalar stands for a 1x1 matrix; see docs/filter.md):
//   F, H, Q, R           required
//   x0, P0               known initial state (required unless `init` says otherwise)
//   init                 known | diffuse | {type: large_variance, variance: 1e7}
//   B, inputs            optional input matrix (n x k) and the k data columns it multiplies
//   observations         optional data columns of y (default: --column, else every non-input)
//   states               optional state names for the output columns
//   name, description    free text
#pragma once

#include <string>
#include <vector>

#include "core/ssm/linear_gaussian_model.hpp"

namespace kwm::launch {

struct SsmModelConfig {
  ssm::LinearGaussianModel model;
  std::vector<std::string> observations;  // empty: not given
  std::vector<std::string> inputs;        // one per column of B
  std::vector<std::string> states;        // n names ("0", "1", ... unless given)
  std::string init_kind;                  // "known", "diffuse" or "large_variance"
};

// Throws UserError "PATH: key 'F' must be ...", "PATH: malformed YAML ...", "model file PATH
// not found".
SsmModelConfig load_ssm_model_config(const std::string& path);

}  // namespace kwm::launch
