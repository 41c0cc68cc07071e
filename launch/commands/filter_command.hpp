// `kwm filter`: Kalman filter (and smoother) of a linear-Gaussian model from MODEL.yaml over the
// columns of DATA.csv; writes filtered (and smoothed) means and variances to a CSV file.
#pragma once

#include <CLI/CLI.hpp>

#include "launch/commands/command.hpp"

namespace kwm::launch {

Command register_filter_command(CLI::App& app);

}  // namespace kwm::launch
