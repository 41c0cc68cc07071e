// The time series a run trains on: observed channels and exogenous inputs as T x k matrices,
// read from CSV in the layout the data config names.
#pragma once

#include <Eigen/Core>
#include <string>
#include <vector>

#include "launch/training/run_config.hpp"

namespace kwm::launch {

struct Series {
  std::string source;
  std::vector<std::string> channels;
  Eigen::MatrixXd outputs;  // T x m, NaN = missing
  Eigen::MatrixXd inputs;   // T x n_in (0 columns when there are none)
  Eigen::Index steps() const { return outputs.rows(); }
};

// Throws UserError naming the file, column or line (missing file, unknown column, bad number,
// an input column with missing values).
Series load_series(const DataConfig& config);

}  // namespace kwm::launch
