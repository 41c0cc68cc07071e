// Reproducible standard-normal matrices for the backend reference tests.
#pragma once

#include <Eigen/Dense>
#include <random>

namespace kwm::testing {

inline Eigen::MatrixXd random_matrix(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd m(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = normal(rng);
  return m;
}

}  // namespace kwm::testing
