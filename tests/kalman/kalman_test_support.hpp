// Shared test helpers: the CPU backend per scalar type, host<->backend shortcuts, random SPD
// matrices and a byte-exact snapshot of a block's state. The reference math in each test is
// plain Eigen fp64, never the code under test.
#pragma once

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "core/backend/backend.hpp"
#include "core/backend/host_transfer.hpp"
#include "core/kalman/decoupled_ekf.hpp"
#include "core/kalman/parameter_block.hpp"

namespace kwm::test {

using MatrixXd = Eigen::MatrixXd;
using VectorXd = Eigen::VectorXd;

template <typename T>
struct Fixture {
  std::unique_ptr<Backend<T>> backend = make_backend<T>("cpu");
  Backend<T>& be() { return *backend; }
  Tensor<T> up(const MatrixXd& m) { return to_backend(*backend, m.cast<T>()); }
  MatrixXd down(const Tensor<T>& t) { return to_host(*backend, t).template cast<double>(); }
};

inline MatrixXd random_matrix(std::mt19937_64& rng, Eigen::Index rows, Eigen::Index cols,
                              double scale = 1.0) {
  std::normal_distribution<double> normal(0.0, scale);
  MatrixXd m(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j) {
    for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = normal(rng);
  }
  return m;
}

// A random SPD matrix with eigenvalues spread over [floor, floor + spread].
inline MatrixXd random_spd(std::mt19937_64& rng, Eigen::Index n, double floor = 0.5,
                           double spread = 1.0) {
  const MatrixXd a = random_matrix(rng, n, n);
  const Eigen::HouseholderQR<MatrixXd> qr(a);
  const MatrixXd q = qr.householderQ();
  std::uniform_real_distribution<double> uniform(0.0, spread);
  VectorXd w(n);
  for (Eigen::Index i = 0; i < n; ++i) w(i) = floor + uniform(rng);
  return q * w.asDiagonal() * q.transpose();
}

// Relative Frobenius distance ||a - b|| / max(||b||, 1e-300).
inline double relative_error(const MatrixXd& a, const MatrixXd& b) {
  return (a - b).norm() / std::max(b.norm(), 1e-300);
}

// Every byte of a block's tensors, to check "state unchanged bit for bit".
template <typename T>
std::vector<unsigned char> snapshot(Backend<T>& backend, const ParameterBlock<T>& block) {
  std::vector<unsigned char> bytes;
  for (const Tensor<T>* t :
       {&block.mean, &block.covariance, &block.information, &block.information_vector}) {
    if (t->empty()) continue;
    std::vector<T> host(static_cast<std::size_t>(t->size()));
    backend.download(*t, host.data());
    const auto* raw = reinterpret_cast<const unsigned char*>(host.data());
    bytes.insert(bytes.end(), raw, raw + host.size() * sizeof(T));
  }
  return bytes;
}

// Tolerances by scalar type: fp64 runs check against the reference to near rounding; fp32 runs
// (24-bit mantissa, condition numbers up to ~1e3 in these tests) to a few parts in 1e4..1e3.
template <typename T>
constexpr double tolerance(double fp64, double fp32) {
  return sizeof(T) == sizeof(double) ? fp64 : fp32;
}

// The parameter vector theta = [m_1; m_2; ...] over blocks (shared-row: W row-major, vec W^T).
template <typename T>
VectorXd stacked_mean(Fixture<T>& f, const std::vector<ParameterBlock<T>*>& blocks) {
  std::vector<double> values;
  for (const ParameterBlock<T>* block : blocks) {
    const MatrixXd m = f.down(block->mean);
    const MatrixXd row_major = m.transpose();
    values.insert(values.end(), row_major.data(), row_major.data() + row_major.size());
  }
  return Eigen::Map<VectorXd>(values.data(), static_cast<Eigen::Index>(values.size()));
}

// One DEKF step on a model linear in theta: e = y - H theta, H split by columns over the blocks.
template <typename T, typename Filter>
auto linear_step(Fixture<T>& f, Filter& filter, const std::vector<ParameterBlock<T>*>& blocks,
                 const MatrixXd& h, const VectorXd& y, const MatrixXd& r) {
  const VectorXd e = y - h * stacked_mean(f, blocks);
  std::vector<BlockObservation<T>> observations;
  Eigen::Index column = 0;
  for (ParameterBlock<T>* block : blocks) {
    const Eigen::Index n = block->size();
    observations.push_back({block, f.up(h.middleCols(column, n))});
    column += n;
  }
  return filter.update(observations, f.up(e), f.up(r));
}

using ScalarTypes = ::testing::Types<double, float>;

}  // namespace kwm::test
