// Sherman-Morrison solve with the mean-field softmax output factor.
#include "core/lm/learners/mean_field_softmax.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace kwm::lm {
namespace {

void check(const Eigen::VectorXd& pbar, double delta) {
  if (!(delta > 0.0) || !std::isfinite(delta))
    throw std::invalid_argument("mean-field softmax factor: delta must be finite and > 0; got " +
                                std::to_string(delta));
  // 1e-6, not 1e-9: a pbar from fp32 softmax rows (the CUDA rls-head, whose checkpoints resume
  // here) sums to 1 only within fp32 rounding, about 1e-7 per token; on the H100 (2026-12-07) such
  // a checkpoint failed the 1e-9 check. A corrupt pbar is off by far more.
  if (!pbar.allFinite() || (pbar.array() < 0.0).any() || pbar.sum() > 1.0 + 1e-6)
    throw std::invalid_argument(
        "mean-field softmax factor: pbar must be a (sub-)probability vector");
}

}  // namespace

Eigen::MatrixXd mean_field_softmax_solve(const Eigen::VectorXd& pbar, double delta,
                                         const Eigen::MatrixXd& x) {
  check(pbar, delta);
  if (x.rows() != pbar.size())
    throw std::invalid_argument("mean-field softmax solve: x has " + std::to_string(x.rows()) +
                                " rows, pbar " + std::to_string(pbar.size()));
  const Eigen::ArrayXd inverse_diagonal = 1.0 / (pbar.array() + delta);
  const Eigen::VectorXd u = (inverse_diagonal * pbar.array()).matrix();
  const double denominator = 1.0 - pbar.dot(u);
  Eigen::MatrixXd y = inverse_diagonal.matrix().asDiagonal() * x;
  // pbar^T Dg^-1 X = u^T X.
  y.noalias() += u * ((u.transpose() * x) / denominator);
  return y;
}

Eigen::MatrixXd mean_field_softmax_factor(const Eigen::VectorXd& pbar, double delta) {
  check(pbar, delta);
  Eigen::MatrixXd g = -pbar * pbar.transpose();
  g.diagonal().array() += pbar.array() + delta;
  return g;
}

}  // namespace kwm::lm
