// solve_with_jitter (core/lm/cuda/jittered_solve.hpp), the retry rls-head and kwm-linearized share,
// on matrices whose outcome is known: A = Q diag(lambda) Q^T with one eigenvalue -delta placed
// between two steps of the jitter schedule, so exactly the sixth attempt factors; A = -I, which no
// attempt of the schedule factors; and a finite A with a NaN right-hand side, whose step is
// flagged. The jitter is recomputed on the host the way the function computes it (trace of the fp32
// diagonal in double), so the shifted diagonal is compared bit for bit; the step against an fp64
// solve of the same shifted matrix. Skipped without a CUDA device.
#include <gtest/gtest.h>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/QR>
#include <cmath>
#include <limits>
#include <vector>

#include "core/backend/cuda/cuda_check.hpp"
#include "core/lm/cuda/device_buffer.hpp"
#include "core/lm/cuda/host_checks.hpp"
#include "core/lm/cuda/jittered_solve.hpp"
#include "tests/lm_cuda/lm_cuda_test_support.hpp"

namespace kwm::lm {
namespace {

using cuda::DeviceBuffer;
using MatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;

constexpr Eigen::Index kM = 40;
constexpr Eigen::Index kRhs = 7;

// A cuSOLVER handle on its own stream, its potrf workspace for kM, and the system's buffers.
class JitteredSolveFixture {
 public:
  explicit JitteredSolveFixture(const MatrixF& a, const MatrixF& b)
      : information_(testing::upload(a)),
        cross_(testing::upload(b)),
        factor_(cuda::as_size(kM * kM)),
        step_(cuda::as_size(kM * kRhs)),
        words_(3) {
    KWM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    KWM_CUSOLVER_CHECK(cusolverDnCreate(&handle_));
    KWM_CUSOLVER_CHECK(cusolverDnSetStream(handle_, stream_));
    int floats = 0;
    KWM_CUSOLVER_CHECK(cusolverDnSpotrf_bufferSize(handle_, CUBLAS_FILL_MODE_LOWER,
                                                   static_cast<int>(kM), factor_.data(),
                                                   static_cast<int>(kM), &floats));
    workspace_.reserve(cuda::as_size(std::max(floats, 1)));
    workspace_floats_ = floats;
    KWM_CUDA_CHECK(cudaMemset(words_.data(), 0, 3 * sizeof(int)));
  }
  ~JitteredSolveFixture() {
    cusolverDnDestroy(handle_);
    cudaStreamDestroy(stream_);
  }
  JitteredSolveFixture(const JitteredSolveFixture&) = delete;
  JitteredSolveFixture& operator=(const JitteredSolveFixture&) = delete;

  bool solve(const JitterConfig& jitter, int& attempts) {
    return cuda::solve_with_jitter(
        {handle_, stream_, workspace_.data(), workspace_floats_}, jitter,
        {kM, kRhs, information_.data(), cross_.data(), factor_.data(), step_.data(), words_.data(),
         words_.data() + 1, words_.data() + 2},
        attempts);
  }
  MatrixF information() const { return testing::download(information_, kM, kM); }
  MatrixF step() const { return testing::download(step_, kM, kRhs); }

 private:
  cudaStream_t stream_ = nullptr;
  cusolverDnHandle_t handle_ = nullptr;
  DeviceBuffer<float> information_, cross_, factor_, step_, workspace_;
  DeviceBuffer<int> words_;
  int workspace_floats_ = 0;
};

// The function's jitter of attempt k (0-based) for the fp32 matrix a.
double jitter_at(const MatrixF& a, const JitterConfig& jitter, int k) {
  double trace = 0.0;
  for (Eigen::Index i = 0; i < a.rows(); ++i) trace += static_cast<double>(a(i, i));
  double j = jitter.initial_relative * (trace / static_cast<double>(a.rows()));
  for (int i = 0; i < k; ++i) j *= jitter.growth;
  return j;
}

// Q diag(lambda) Q^T with lambda in [1, 2] except lambda_0 = smallest.
MatrixF with_smallest_eigenvalue(double smallest) {
  const Eigen::MatrixXd q = Eigen::MatrixXd::Random(kM, kM).householderQr().householderQ();
  Eigen::VectorXd lambda = Eigen::VectorXd::LinSpaced(kM, 1.0, 2.0);
  lambda(0) = smallest;
  const Eigen::MatrixXd a = q * lambda.asDiagonal() * q.transpose();
  return (0.5 * (a + a.transpose())).cast<float>();
}

TEST(LmCudaJitteredSolve, TheFirstJitterThatFactorsIsKeptAndSolvesTheShiftedSystem) {
  KWM_REQUIRE_CUDA_DEVICE();
  const JitterConfig jitter;  // 1e-9 x mean diagonal, x10 per attempt, 8 attempts
  // lambda_0 = -0.3 j_5: A + j_4 I keeps an eigenvalue -0.2 j_5 (fails), A + j_5 I has 0.7 j_5 > 0
  // (factors), both margins far above fp32 potrf's rounding (about m eps |A| = 1e-5 j_5 here).
  const double mean_diagonal = 1.5 - 1.0 / static_cast<double>(kM);  // trace of the above / m
  const double j5 = jitter.initial_relative * mean_diagonal * std::pow(jitter.growth, 5);
  const MatrixF a = with_smallest_eigenvalue(-0.3 * j5);
  const MatrixF b = Eigen::MatrixXd::Random(kM, kRhs).cast<float>();
  JitteredSolveFixture system(a, b);
  int attempts = 0;
  ASSERT_TRUE(system.solve(jitter, attempts));
  EXPECT_EQ(attempts, 6);
  const float shift = static_cast<float>(jitter_at(a, jitter, 5));
  MatrixF want = a;
  for (Eigen::Index i = 0; i < kM; ++i) want(i, i) += shift;
  EXPECT_EQ(system.information(), want);  // the jitter stays in A, bit for bit
  const Eigen::MatrixXd shifted = want.cast<double>();
  const Eigen::MatrixXd solved = shifted.llt().solve(b.cast<double>());
  // Condition number of A + j_5 I about 2 / (0.7 j_5) = 2e4: fp32 solves to about 1e-3.
  const double error = testing::relative_error(system.step(), solved);
  std::cout << "[ measured ] 6 attempts, step against the fp64 solve of A + j_5 I: " << error
            << " relative\n";
  EXPECT_LT(error, 1e-2);
}

TEST(LmCudaJitteredSolve, AMatrixNoJitterFactorsGivesUpAfterMaxRetriesUnchanged) {
  KWM_REQUIRE_CUDA_DEVICE();
  JitterConfig jitter;
  jitter.max_retries = 5;
  const MatrixF a = -MatrixF::Identity(kM, kM);
  const MatrixF b = MatrixF::Ones(kM, kRhs);
  JitteredSolveFixture system(a, b);
  int attempts = 2;  // added to, not reset
  EXPECT_FALSE(system.solve(jitter, attempts));
  EXPECT_EQ(attempts, 2 + 5);
  EXPECT_EQ(system.information(), a);
}

TEST(LmCudaJitteredSolve, ANonFiniteStepIsRefusedAfterTheFactorSucceeds) {
  KWM_REQUIRE_CUDA_DEVICE();
  const JitterConfig jitter;
  const MatrixF a = with_smallest_eigenvalue(1.0);
  MatrixF b = MatrixF::Ones(kM, kRhs);
  b(3, 2) = std::numeric_limits<float>::quiet_NaN();
  JitteredSolveFixture system(a, b);
  int attempts = 0;
  EXPECT_FALSE(system.solve(jitter, attempts));
  EXPECT_EQ(attempts, 1);  // the first jitter factors; its step is not finite
}

}  // namespace
}  // namespace kwm::lm
