// What a run directory holds and how it is written: the resolved config, the model, the
// predictions table. Every file is written atomically.
#pragma once

#include <Eigen/Core>
#include <filesystem>
#include <string>

#include "core/eval/time_split.hpp"
#include "launch/training/series.hpp"

namespace kwm::launch {

// t, split, then y_<c>, mean_<c>, var_<c> per channel.
std::string predictions_csv(const Series& series, const eval::TimeSplit* split,
                            const Eigen::MatrixXd& mean, const Eigen::MatrixXd& variance);

// Creates the folder (and parents); throws UserError naming it when that fails.
void ensure_directory(const std::filesystem::path& dir);

}  // namespace kwm::launch
