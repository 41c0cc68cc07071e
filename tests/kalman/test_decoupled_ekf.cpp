// The DEKF step against a full-matrix Eigen reference (ALGORITHMS.md section 11.2): one block is
// the global EKF, 1 x 1 blocks (or a diagonal block) the diagonal EKF, mixed blocks the
// block-diagonal DEKF; Joseph form equals the plain downdate for the optimal gain and matches
// (I - K H) P (I - K H)^T + K R K^T for any gain; 1, 2 and 3 ranks (threads joined by an
// all-reduce) equal one rank. Tolerances (relative Frobenius after 40-80 nonlinear steps):
// fp64 1e-9, fp32 2e-3 (tanh model, condition numbers ~1e2); rank splits 1e-12 / 1e-4 (only
// the summation order differs).
#include <gtest/gtest.h>

#include <barrier>
#include <cmath>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "core/kalman/covariance_downdate.hpp"
#include "core/kalman/decoupled_ekf.hpp"
#include "tests/kalman/kalman_test_support.hpp"

namespace kwm {
namespace {

using test::MatrixXd;
using test::relative_error;
using test::VectorXd;

// Full-matrix DEKF: P kept block diagonal by a mask (all ones: the global EKF; identity: the
// diagonal EKF). K = U S^-1 through an LLT of S, P <- (P - K U^T) .* mask.
struct ReferenceDekf {
  MatrixXd p;
  MatrixXd mask;
  VectorXd mean;
  void update(const MatrixXd& h, const VectorXd& e, const MatrixXd& r) {
    const MatrixXd u = p * h.transpose();
    const MatrixXd s = h * u + r;
    const MatrixXd k = s.llt().solve(u.transpose()).transpose();
    mean += k * e;
    p = (p - k * u.transpose()).cwiseProduct(mask);
    p = (0.5 * (p + p.transpose())).eval();
  }
};

struct Layout {
  BlockKind kind;
  Eigen::Index size;
};

// A block-diagonal prior for the layout and its mask.
void make_prior(std::mt19937_64& rng, const std::vector<Layout>& layout, MatrixXd& p,
                MatrixXd& mask) {
  Eigen::Index n = 0;
  for (const Layout& l : layout) n += l.size;
  p = MatrixXd::Zero(n, n);
  mask = MatrixXd::Zero(n, n);
  Eigen::Index at = 0;
  std::uniform_real_distribution<double> variance(0.3, 2.0);
  for (const Layout& l : layout) {
    if (l.kind == BlockKind::dense) {
      p.block(at, at, l.size, l.size) = test::random_spd(rng, l.size, 0.3, 1.5);
      mask.block(at, at, l.size, l.size).setOnes();
    } else {
      for (Eigen::Index i = 0; i < l.size; ++i) {
        p(at + i, at + i) = variance(rng);
        mask(at + i, at + i) = 1.0;
      }
    }
    at += l.size;
  }
}

template <typename T>
std::vector<ParameterBlock<T>> make_blocks(test::Fixture<T>& f, const std::vector<Layout>& layout,
                                           const MatrixXd& p, const VectorXd& mean) {
  std::vector<ParameterBlock<T>> blocks;
  Eigen::Index at = 0;
  BlockId id = 100;
  for (const Layout& l : layout) {
    const MatrixXd pb = p.block(at, at, l.size, l.size);
    const VectorXd mb = mean.segment(at, l.size);
    blocks.push_back(l.kind == BlockKind::dense
                         ? make_dense_block(f.be(), id++, f.up(mb), f.up(pb))
                         : make_diagonal_block(f.be(), id++, f.up(mb), f.up(pb.diagonal())));
    at += l.size;
  }
  return blocks;
}

template <typename T>
std::vector<ParameterBlock<T>*> pointers(std::vector<ParameterBlock<T>>& blocks) {
  std::vector<ParameterBlock<T>*> out;
  for (ParameterBlock<T>& b : blocks) out.push_back(&b);
  return out;
}

// yhat = tanh(X theta), H = diag(1 - yhat^2) X: a nonlinear model whose Jacobian moves with theta.
struct TanhModel {
  std::vector<MatrixXd> x;
  std::vector<VectorXd> y;
  TanhModel(std::uint64_t seed, Eigen::Index n, Eigen::Index m, int steps) {
    std::mt19937_64 rng(seed);
    const VectorXd truth = test::random_matrix(rng, n, 1, 0.5);
    for (int t = 0; t < steps; ++t) {
      x.push_back(test::random_matrix(rng, m, n, 0.5));
      y.push_back((x.back() * truth).array().tanh().matrix() +
                  0.05 * test::random_matrix(rng, m, 1));
    }
  }
  VectorXd predict(int t, const VectorXd& theta) const {
    return (x[static_cast<std::size_t>(t)] * theta).array().tanh();
  }
  MatrixXd jacobian(int t, const VectorXd& theta) const {
    const VectorXd yhat = predict(t, theta);
    return (1.0 - yhat.array().square()).matrix().asDiagonal() * x[static_cast<std::size_t>(t)];
  }
};

template <typename T>
std::vector<BlockObservation<T>> observe(test::Fixture<T>& f,
                                         const std::vector<ParameterBlock<T>*>& blocks,
                                         const MatrixXd& h) {
  std::vector<BlockObservation<T>> observations;
  Eigen::Index at = 0;
  for (ParameterBlock<T>* b : blocks) {
    observations.push_back({b, f.up(h.middleCols(at, b->size()))});
    at += b->size();
  }
  return observations;
}

template <typename T>
class DekfEquivalence : public ::testing::Test {
 protected:
  test::Fixture<T> fx;
  double tol = test::tolerance<T>(1e-9, 2e-3);

  // Runs the DEKF on the tanh model with the given layout and compares with the reference.
  void check_against_reference(const std::vector<Layout>& layout, bool joseph, int steps = 60) {
    auto& f = fx;
    std::mt19937_64 rng(17);
    MatrixXd p;
    MatrixXd mask;
    make_prior(rng, layout, p, mask);
    const Eigen::Index n = p.rows();
    const Eigen::Index m = 3;
    const TanhModel model(23, n, m, steps);
    ReferenceDekf reference{p, mask, VectorXd::Zero(n)};
    std::vector<ParameterBlock<T>> blocks = make_blocks(f, layout, p, reference.mean);
    std::vector<ParameterBlock<T>*> ptrs = pointers(blocks);
    UpdateConfig config;
    config.safeguards.joseph = joseph;
    DecoupledEkf<T> ekf(f.be(), config);
    const MatrixXd r = 0.05 * MatrixXd::Identity(m, m);
    for (int t = 0; t < steps; ++t) {
      const VectorXd theta = test::stacked_mean(f, ptrs);
      const MatrixXd h = model.jacobian(t, theta);
      const VectorXd e = model.y[static_cast<std::size_t>(t)] - model.predict(t, theta);
      ASSERT_TRUE(ekf.update(observe(f, ptrs, h), f.up(e), f.up(r)).applied());
      reference.update(model.jacobian(t, reference.mean),
                       model.y[static_cast<std::size_t>(t)] - model.predict(t, reference.mean), r);
    }
    EXPECT_LT(relative_error(test::stacked_mean(f, ptrs), reference.mean), tol);
    Eigen::Index at = 0;
    for (ParameterBlock<T>& b : blocks) {
      const MatrixXd pb = reference.p.block(at, at, b.size(), b.size());
      const MatrixXd expected =
          b.kind == BlockKind::diagonal ? MatrixXd(pb.diagonal()) : MatrixXd(pb);
      EXPECT_LT(relative_error(f.down(b.covariance), expected), tol) << "block " << b.id;
      EXPECT_EQ(b.counters.updates, steps);
      at += b.size();
    }
  }
};
TYPED_TEST_SUITE(DekfEquivalence, test::ScalarTypes);

TYPED_TEST(DekfEquivalence, OneBlockIsTheGlobalEkf) {
  this->check_against_reference({{BlockKind::dense, 6}}, false);
}

TYPED_TEST(DekfEquivalence, UnitDenseBlocksAreTheDiagonalEkf) {
  std::vector<Layout> layout(6, Layout{BlockKind::dense, 1});
  this->check_against_reference(layout, false);
}

TYPED_TEST(DekfEquivalence, DiagonalBlocksAreTheDiagonalEkf) {
  this->check_against_reference({{BlockKind::diagonal, 6}}, false);
  this->check_against_reference({{BlockKind::diagonal, 2}, {BlockKind::diagonal, 4}}, false);
}

TYPED_TEST(DekfEquivalence, MixedBlocksAreTheBlockDiagonalDekf) {
  this->check_against_reference(
      {{BlockKind::dense, 3}, {BlockKind::diagonal, 2}, {BlockKind::dense, 2}}, false, 80);
}

TYPED_TEST(DekfEquivalence, JosephEqualsPlainDowndateForTheOptimalGain) {
  // Same reference (plain P - K U^T), Joseph-form filter.
  this->check_against_reference({{BlockKind::dense, 4}, {BlockKind::diagonal, 3}}, true, 80);
}

TYPED_TEST(DekfEquivalence, JosephFormHoldsForAnyGain) {
  using T = TypeParam;
  auto& f = this->fx;
  std::mt19937_64 rng(41);
  const Eigen::Index n = 5;
  const Eigen::Index m = 3;
  const MatrixXd p = test::random_spd(rng, n);
  const MatrixXd h = test::random_matrix(rng, m, n);
  const MatrixXd r = test::random_spd(rng, m, 0.1, 0.4);
  const MatrixXd k = test::random_matrix(rng, n, m, 0.3);  // not the optimal gain
  const MatrixXd u = p * h.transpose();
  const MatrixXd s = h * u + r;
  const MatrixXd a = MatrixXd::Identity(n, n) - k * h;
  const MatrixXd expected = a * p * a.transpose() + k * r * k.transpose();

  ParameterBlock<T> dense = make_dense_block(f.be(), 1, f.up(VectorXd::Zero(n)), f.up(p));
  Tensor<T> workspace = f.be().allocate(n, m);
  downdate_covariance(f.be(), dense, f.up(k), f.up(u), f.up(s), true, workspace);
  EXPECT_LT(relative_error(f.down(dense.covariance), expected), this->tol);

  // Diagonal block: P diagonal, and only diag of the Joseph form is kept.
  const MatrixXd pd = MatrixXd(p.diagonal().asDiagonal());
  const MatrixXd ud = pd * h.transpose();
  const MatrixXd sd = h * ud + r;
  const MatrixXd expected_d = (a * pd * a.transpose() + k * r * k.transpose()).diagonal();
  ParameterBlock<T> diagonal =
      make_diagonal_block(f.be(), 2, f.up(VectorXd::Zero(n)), f.up(p.diagonal()));
  downdate_covariance(f.be(), diagonal, f.up(k), f.up(ud), f.up(sd), true, workspace);
  EXPECT_LT(relative_error(f.down(diagonal.covariance), expected_d), this->tol);
}

TEST(Dekf, ReducerSeesOnePartialSumPerUpdate) {
  test::Fixture<double> f;
  std::vector<Index> counts;
  DecoupledEkf<double> ekf(f.be(), UpdateConfig{},
                           [&](double*, Index count) { counts.push_back(count); });
  ParameterBlock<double> b =
      make_dense_block(f.be(), 1, f.up(VectorXd::Zero(3)), f.up(MatrixXd::Identity(3, 3)));
  std::mt19937_64 rng(1);
  for (int t = 0; t < 4; ++t) {
    test::linear_step(f, ekf, {&b}, test::random_matrix(rng, 2, 3), test::random_matrix(rng, 2, 1),
                      MatrixXd::Identity(2, 2));
  }
  EXPECT_EQ(counts, (std::vector<Index>{4, 4, 4, 4}));
}

TEST(Dekf, ReducerOutputIsWhatTheUpdateUses) {
  // A reducer that doubles the partial sum acts like a second identical rank: S = R + 2 H P H^T.
  test::Fixture<double> f;
  DecoupledEkf<double> ekf(f.be(), UpdateConfig{}, [](double* data, Index count) {
    for (Index i = 0; i < count; ++i) data[i] *= 2.0;
  });
  const MatrixXd p = MatrixXd::Identity(2, 2);
  ParameterBlock<double> b = make_dense_block(f.be(), 1, f.up(VectorXd::Zero(2)), f.up(p));
  const MatrixXd h = (MatrixXd(1, 2) << 1.0, 2.0).finished();
  const VectorXd y = VectorXd::Constant(1, 3.0);
  test::linear_step(f, ekf, {&b}, h, y, MatrixXd::Constant(1, 1, 0.5));
  const double s = 0.5 + 2.0 * 5.0;
  const VectorXd expected = p * h.transpose() * (3.0 / s);
  EXPECT_LT(relative_error(f.down(b.mean), expected), 1e-14);
}

TEST(Dekf, RejectsBlocksItCannotUpdate) {
  test::Fixture<double> f;
  DecoupledEkf<double> ekf(f.be(), UpdateConfig{});
  ParameterBlock<double> info = make_dense_block(f.be(), 1, f.up(VectorXd::Zero(2)),
                                                 f.up(MatrixXd::Identity(2, 2)), Form::information);
  EXPECT_THROW(test::linear_step(f, ekf, {&info}, MatrixXd::Ones(1, 2), VectorXd::Ones(1),
                                 MatrixXd::Ones(1, 1)),
               std::invalid_argument);
  ParameterBlock<double> dense =
      make_dense_block(f.be(), 2, f.up(VectorXd::Zero(2)), f.up(MatrixXd::Identity(2, 2)));
  std::vector<BlockObservation<double>> wrong{{&dense, f.up(MatrixXd::Ones(1, 3))}};
  EXPECT_THROW(ekf.update(wrong, f.up(VectorXd::Ones(1)), f.up(MatrixXd::Ones(1, 1))),
               std::invalid_argument);
}

// All-reduce among threads: every rank deposits its buffer, every rank sums all buffers in rank
// order (so every rank gets the same bits), as an MPI/NCCL all-reduce would.
template <typename T>
class ThreadAllReduce {
 public:
  explicit ThreadAllReduce(int ranks)
      : buffers_(static_cast<std::size_t>(ranks)), barrier_(ranks) {}
  void sum(int rank, T* data, Index count) {
    buffers_[static_cast<std::size_t>(rank)].assign(data, data + count);
    barrier_.arrive_and_wait();
    for (Index i = 0; i < count; ++i) {
      T total = T(0);
      for (const auto& b : buffers_) total += b[static_cast<std::size_t>(i)];
      data[i] = total;
    }
    barrier_.arrive_and_wait();
  }

 private:
  std::vector<std::vector<T>> buffers_;
  std::barrier<> barrier_;
};

template <typename T>
struct RankRun {
  std::vector<ParameterBlock<T>> blocks;  // every block; a rank updates those it owns
  std::vector<UpdateStatus> statuses;
  FilterCounters counters;
};

// Runs the tanh model over `ranks` threads, block b owned by rank b % ranks. yhat's per-block
// partial X_b theta_b is all-reduced too, as the forward pass would. Step `nan_step` puts a NaN
// into the Jacobian of the last rank only.
template <typename T>
std::vector<RankRun<T>> run_ranks(int ranks, int nan_step) {
  const std::vector<Layout> layout{{BlockKind::dense, 3},
                                   {BlockKind::diagonal, 4},
                                   {BlockKind::dense, 2},
                                   {BlockKind::diagonal, 1}};
  std::mt19937_64 rng(5);
  MatrixXd p;
  MatrixXd mask;
  make_prior(rng, layout, p, mask);
  const Eigen::Index n = p.rows();
  const Eigen::Index m = 2;
  const int steps = 40;
  const TanhModel model(9, n, m, steps);
  const MatrixXd r = 0.05 * MatrixXd::Identity(m, m);
  ThreadAllReduce<T> all_reduce(ranks);
  std::vector<RankRun<T>> runs(static_cast<std::size_t>(ranks));
  auto work = [&](int rank) {
    test::Fixture<T> f;
    RankRun<T>& run = runs[static_cast<std::size_t>(rank)];
    run.blocks = make_blocks(f, layout, p, VectorXd::Zero(n));
    DecoupledEkf<T> ekf(f.be(), UpdateConfig{},
                        [&](T* data, Index count) { all_reduce.sum(rank, data, count); });
    std::vector<Eigen::Index> offsets;
    Eigen::Index at = 0;
    for (const Layout& l : layout) {
      offsets.push_back(at);
      at += l.size;
    }
    for (int t = 0; t < steps; ++t) {
      const MatrixXd& x = model.x[static_cast<std::size_t>(t)];
      // Forward pass: z = sum over owned blocks of X_b theta_b, all-reduced.
      Eigen::Matrix<T, Eigen::Dynamic, 1> z = Eigen::Matrix<T, Eigen::Dynamic, 1>::Zero(m);
      for (std::size_t b = 0; b < layout.size(); ++b) {
        if (static_cast<int>(b) % ranks != rank) continue;
        const VectorXd theta_b = f.down(run.blocks[b].mean);
        z += (x.middleCols(offsets[b], layout[b].size) * theta_b).template cast<T>();
      }
      all_reduce.sum(rank, z.data(), m);
      const VectorXd yhat = z.template cast<double>().array().tanh();
      const VectorXd e = model.y[static_cast<std::size_t>(t)] - yhat;
      const VectorXd slope = 1.0 - yhat.array().square();
      std::vector<BlockObservation<T>> observations;
      for (std::size_t b = 0; b < layout.size(); ++b) {
        if (static_cast<int>(b) % ranks != rank) continue;
        MatrixXd h = slope.asDiagonal() * x.middleCols(offsets[b], layout[b].size);
        if (t == nan_step && rank == ranks - 1 && observations.empty()) {
          h(0, 0) = std::numeric_limits<double>::quiet_NaN();
        }
        observations.push_back({&run.blocks[b], f.up(h)});
      }
      run.statuses.push_back(ekf.update(observations, f.up(e), f.up(r)).status);
    }
    run.counters = ekf.counters();
  };
  std::vector<std::thread> threads;
  for (int rank = 0; rank < ranks; ++rank) threads.emplace_back(work, rank);
  for (std::thread& thread : threads) thread.join();
  return runs;
}

template <typename T>
class DataParallel : public ::testing::Test {};
TYPED_TEST_SUITE(DataParallel, test::ScalarTypes);

TYPED_TEST(DataParallel, RanksEqualOneRankAndSkipTogether) {
  using T = TypeParam;
  const double tol = test::tolerance<T>(1e-12, 1e-4);
  const int nan_step = 7;
  const std::vector<RankRun<T>> single = run_ranks<T>(1, nan_step);
  test::Fixture<T> f;
  for (const int ranks : {2, 3}) {
    const std::vector<RankRun<T>> runs = run_ranks<T>(ranks, nan_step);
    for (int rank = 0; rank < ranks; ++rank) {
      const RankRun<T>& run = runs[static_cast<std::size_t>(rank)];
      // Every rank skipped the poisoned step, and only that one.
      EXPECT_EQ(run.statuses, single[0].statuses) << ranks << " ranks, rank " << rank;
      EXPECT_EQ(run.statuses[nan_step], UpdateStatus::skipped_nonfinite);
      EXPECT_EQ(run.counters.nonfinite, 1);
      for (std::size_t b = 0; b < run.blocks.size(); ++b) {
        if (static_cast<int>(b) % ranks != rank) continue;
        const ParameterBlock<T>& mine = run.blocks[b];
        const ParameterBlock<T>& ref = single[0].blocks[b];
        EXPECT_LT(relative_error(f.down(mine.mean), f.down(ref.mean)), tol) << "block " << b;
        EXPECT_LT(relative_error(f.down(mine.covariance), f.down(ref.covariance)), tol);
        EXPECT_EQ(mine.counters, ref.counters);
      }
    }
  }
}

}  // namespace
}  // namespace kwm
