// Softmax cross entropy per column (max-shifted log-sum-exp) and the output innovation.
#include "core/lm/cross_entropy.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace kwm::lm {
namespace {

void check_targets(Eigen::Index vocab, Eigen::Index columns,
                   const std::vector<std::int32_t>& targets) {
  if (static_cast<Eigen::Index>(targets.size()) != columns) {
    throw std::invalid_argument("cross_entropy: " + std::to_string(targets.size()) +
                                " targets for " + std::to_string(columns) + " logit columns");
  }
  for (std::size_t n = 0; n < targets.size(); ++n) {
    if (targets[n] < 0 || targets[n] >= vocab) {
      throw std::invalid_argument("target token id " + std::to_string(targets[n]) +
                                  " at position " + std::to_string(n) +
                                  " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
    }
  }
}

}  // namespace

template <typename T>
CrossEntropy<T> cross_entropy(const Matrix<T>& logits, const std::vector<std::int32_t>& targets) {
  check_targets(logits.rows(), logits.cols(), targets);
  CrossEntropy<T> result;
  const Eigen::Matrix<T, 1, Eigen::Dynamic> max = logits.colwise().maxCoeff();
  result.probabilities = (logits.rowwise() - max).array().exp().matrix();
  const Eigen::Matrix<T, 1, Eigen::Dynamic> sum = result.probabilities.colwise().sum();
  result.probabilities.array().rowwise() /= sum.array();
  // -log p_target = log sum exp(l - max) - (l_target - max), accumulated in double.
  double total = 0.0;
  for (Eigen::Index n = 0; n < logits.cols(); ++n) {
    const auto target = static_cast<Eigen::Index>(targets[static_cast<std::size_t>(n)]);
    total += std::log(static_cast<double>(sum(n))) -
             (static_cast<double>(logits(target, n)) - static_cast<double>(max(n)));
  }
  result.total_nll = total;
  result.mean_nll = logits.cols() > 0 ? total / static_cast<double>(logits.cols()) : 0.0;
  return result;
}

template <typename T>
Matrix<T> output_innovation(const CrossEntropy<T>& loss, const std::vector<std::int32_t>& targets) {
  check_targets(loss.probabilities.rows(), loss.probabilities.cols(), targets);
  Matrix<T> e = -loss.probabilities;
  for (std::size_t n = 0; n < targets.size(); ++n) {
    e(targets[n], static_cast<Eigen::Index>(n)) += T(1);
  }
  return e;
}

template CrossEntropy<double> cross_entropy(const Matrix<double>&,
                                            const std::vector<std::int32_t>&);
template CrossEntropy<float> cross_entropy(const Matrix<float>&, const std::vector<std::int32_t>&);
template Matrix<double> output_innovation(const CrossEntropy<double>&,
                                          const std::vector<std::int32_t>&);
template Matrix<float> output_innovation(const CrossEntropy<float>&,
                                         const std::vector<std::int32_t>&);

}  // namespace kwm::lm
