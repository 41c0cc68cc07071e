// KwmLinearizedCuda: one kwm-linearized training step (core/lm/learners/kwm_linearized_learner)
// on CUDA devices in fp32, one rank per GPU. The forward pass, innovation and transposed
// Jacobians come from GptTransposeCuda; then every block of linearized_blocks.hpp takes its
// information-form Kalman step on the device:
//   linear layer  S = (1/r) a a^T (one SGEMM on x, row sums for 1), B = (1/r) a dz^T (the pass's
//                 weight transpose, transposed), L' = lambda L + (1 - lambda) L0 + S,
//                 L' = F F^T (cusolverDnSpotrfBatched over the blocks of one size),
//                 W += (F^-T F^-1 B)^T (two cublasStrsmBatched; never an explicit inverse),
//                 L <- L' (lower triangle kept);
//   embedding     diagonal information, exact (a kernel);
//   layer norm    one 2 x 2 information block per coordinate (a kernel, fp64 inside).
// Several ranks (data parallel, as the CPU learner): each rank runs the pass on its own share of
// the batch; its raw statistics (S, the row counts, the layer-norm moments) and J^T e travel in
// two device all-reduces; each block's owner (place_blocks_lpt on the CPU learner's costs) forms
// L', factors, solves and moves the block; then every rank zeroes the blocks it does not own and
// one all-reduce of the parameters hands every rank the owners' values exactly (x + 0 = x).
// Streams: on one rank the statistics, L' and the batched factors need only the forward cache, so
// they run on a second stream while the transposed pass runs on the first (GptTransposeCuda::run's
// after_forward); only the cross terms, solves and moves wait for both. With several ranks the
// statistics are all-reduced first, so everything stays on the pass's stream in order.
// Safeguards as the CPU learner: a non-finite NLL on any rank skips the step everywhere (an
// all-reduced flag); non-finite statistics or step, or a factorisation that fails even after the
// escalating jitter (core/kalman's jittered_cholesky schedule), skip that block (it stays
// untouched); the owners' outcomes are summed so every rank counts the same skips; covariances
// stay below the prior by forgetting toward it. Observation noise: `fixed` only (adaptive throws).
#pragma once

#include <cuda_bf16.h>
#include <cusolverDn.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/lm/cuda/device_all_reduce.hpp"
#include "core/lm/cuda/device_buffer.hpp"
#include "core/lm/cuda/gpt_transpose_cuda.hpp"
#include "core/lm/cuda/stream_graphs.hpp"
#include "core/lm/cuda/tensor_math.hpp"
#include "core/lm/learners/kwm_linearized_learner.hpp"
#include "core/lm/learners/language_learner.hpp"

namespace kwm::lm::cuda {

class KwmLinearizedCuda {
 public:
  // start: the initial parameters (untied head, as the CPU learner makes them), identical on
  // every rank; the prior information is I / initial_variance for every block. `host`: the ranks
  // and their host collectives (one process by default); with several ranks the device buffers
  // are summed through the host until use_device_all_reduce() installs a device collective. The
  // current CUDA device must be this rank's (select_device). Throws std::invalid_argument on a
  // tied head, adaptive noise or inconsistent collectives.
  KwmLinearizedCuda(const KwmLinearizedConfig& config, const GptParameters<double>& start,
                    const LmCollectives& host = {});
  KwmLinearizedCuda(const KwmLinearizedCuda&) = delete;
  KwmLinearizedCuda& operator=(const KwmLinearizedCuda&) = delete;
  ~KwmLinearizedCuda();

  // One step on this rank's share of the batch; collective when there are several ranks.
  StepReport step(const TokenBatch& batch);

  // A device all-reduce ordered after stream() (NCCL), in place of the host-staged default.
  void use_device_all_reduce(DeviceAllReduce reduce) { reduce_ = std::move(reduce); }
  cudaStream_t stream() { return model_.stream(); }
  // The rank that owns block b (forms, factors and solves it; holds its information).
  int owner(std::size_t block) const { return blocks_.at(block).owner; }
  bool owns(std::size_t block) const { return owner(block) == host_.rank; }
  // Floats all-reduced per step with several ranks: statistics, J^T e and the parameters.
  std::size_t reduced_floats() const;

  // Host copies (a device wait each).
  GptParameters<double> parameters();
  // The block's information as the CPU learner's state() holds it (linear: full symmetric
  // (d_in+1)^2; embedding: rows x 1; layer norm: d x 3). Only its owner has it
  // (std::logic_error elsewhere).
  Eigen::MatrixXd information(std::size_t block);
  // The shape information(block) has (and set_information expects).
  std::pair<Eigen::Index, Eigen::Index> information_shape(std::size_t block) const;
  const std::vector<std::string>& block_names() const { return names_; }

  // Restoring a checkpoint (core/lm/cuda/kwm_linearized_cuda_learner): the parameters (same
  // config, untied head; rounded to fp32), one block's information in information()'s layout
  // (std::invalid_argument on another shape; owners only), and the counters.
  void set_parameters(const GptParameters<double>& parameters);
  void set_information(std::size_t block, const Eigen::MatrixXd& information);
  void set_counters(std::int64_t steps, std::int64_t skips, std::int64_t block_skips,
                    std::int64_t jitter_retries);
  // TF32 or fp32 GEMMs in the GPT pass (GptTransposeCuda); the statistics follow
  // set_statistics_math, the factors and solves stay fp32.
  void set_tensor_math(TensorMath math) { model_.set_tensor_math(math); }
  // fp32, TF32 or BF16 for the x x^T products of the linear blocks' statistics (the one GEMM of
  // the learner). With TF32 each input is rounded to a 10-bit mantissa once and the products of
  // two such values are exact in fp32, so S is the fp32-accumulated Gram matrix of the rounded
  // inputs: still symmetric positive semi-definite, an information for slightly perturbed inputs
  // rather than an indefinite approximation. BF16 does the same at an 8-bit significand (7 bits
  // stored; unit roundoff 2^-8): the inputs are rounded into a bfloat16 copy, whose row sums give
  // the bias row, so S is exactly such a Gram matrix of [rounded x; 1]; twice TF32's tensor-core
  // rate. The factors, solves and information stay fp32.
  void set_statistics_math(TensorMath math) { statistics_math_ = math; }
  TensorMath statistics_math() const { return statistics_math_; }

  // Device time of the last step's phases (CUDA events; only while set_phase_timing(true), which
  // adds one host wait per step). With one rank the statistics and factors overlap the backward
  // pass, so the phases do not add up to total_ms.
  struct Phases {
    bool overlapped = false;     // statistics and factors on their own stream
    double forward_ms = 0.0;     // step start to the forward pass and innovation queued
    double backward_ms = 0.0;    // transposed pass (from the end of the forward pass)
    double statistics_ms = 0.0;  // moments (and their all-reduce with several ranks)
    double factors_ms = 0.0;     // L' and the batched potrf
    double solves_ms = 0.0;      // from both branches done: cross terms, embeddings, layer
                                 // norms, triangular solves, flags and their copy to the host
    double apply_ms = 0.0;       // moving the accepted blocks (and sharing the parameters)
    double total_ms = 0.0;
  };
  void set_phase_timing(bool on);
  const Phases& last_phases() const { return phases_; }

  // The triangular solves' right-hand sides in column chunks of at most `width`: each chunk is
  // its own entry of the batched solve (the block's factor pointer repeats), so a shape with few
  // blocks and many columns spreads over more of the GPU. 0 keeps every block's right-hand sides
  // whole. Columns solve independently, so the steps agree to fp32 rounding (tested); the
  // benchmark's --solve-columns compares widths. May change between steps. The default, 128,
  // took the solves from 3.08 to 2.48 ms and the step from 16.42 to 15.81 ms on the 10M model at
  // 32 x 256 on an H100 (24.5 against 25.0 ms at 64 x 256; 64 and 256 were as fast, 32 a little
  // slower; docs/gpu-lm.md).
  static constexpr std::int64_t kDefaultSolveColumns = 128;
  void set_solve_columns(std::int64_t width);
  std::int64_t solve_columns() const { return solve_columns_; }

  // CUDA graphs for the step's fixed sequences of small calls (stream_graphs.hpp): on by default;
  // off runs them call by call (the same results; the benchmark compares the two).
  void set_graphs(bool on) { graphs_.set_enabled(on); }
  const StreamGraphs& graphs() const { return graphs_; }
  std::int64_t steps() const { return steps_; }
  std::int64_t skips() const { return skips_; }
  std::int64_t block_skips() const { return block_skips_; }
  std::int64_t jitter_retries() const { return jitter_retries_; }

 private:
  enum class Kind { token_embedding, position_embedding, layer_norm, linear };
  struct Block {
    std::string name;
    Kind kind = Kind::linear;
    std::size_t site = 0;     // linear: the linear site; layer norm: index into the LN caches
    DeviceLinear layer;       // linear
    DeviceLayerNorm norm;     // layer norm
    std::int64_t inputs = 0;  // linear: d_in (+1 with a bias); LN: d; embedding: rows
    int owner = 0;
    // Slice of statistics_ (every rank): linear: S, m x m, then L' in place on the owner; layer
    // norm: sum xhat^2 and sum xhat (2 d); embedding: the row counts.
    float* moments = nullptr;
    int* factor_info = nullptr;  // linear, owner: its potrf info inside status_
    // The owner's buffers:
    DeviceBuffer<float> information;  // linear: inputs^2 (lower valid); embedding: rows; LN: d x 3
    DeviceBuffer<float> updated;      // embedding / LN: candidate information
    DeviceBuffer<float> factor;       // linear: the Cholesky factor
    DeviceBuffer<float> cross;        // linear: (1/r) a dz^T (inputs x d_out)
    DeviceBuffer<float> step;         // linear: the solved step; embedding/LN: candidate values
  };
  // Owned linear blocks of one size m (one batched potrf) or right-hand sides of one (m, columns)
  // (batched solves; the entries are whole blocks or column chunks of them).
  struct Batch {
    std::int64_t m = 0, rows = 0;
    std::size_t entries = 0;              // the batch count: blocks, or column chunks of them
    int* infos = nullptr;                 // factor batches: potrf's infos, one per block in order
    DeviceBuffer<float*> factors, steps;  // device arrays of the blocks' pointers
  };

  bool active(const Block& block) const;
  bool owned(const Block& block) const { return block.owner == host_.rank; }
  void plan_batches();
  void plan_solves();
  // The learner's stream and cuBLAS handle for the statistics and factors: the second stream
  // with one rank, the pass's with several.
  cudaStream_t learner_stream() const { return side_ != nullptr ? side_ : model_.stream(); }
  cublasHandle_t learner_blas() const { return side_ != nullptr ? side_blas_ : model_.blas(); }
  StreamGraphs::Key statistics_key() const;
  void queue_statistics(const TokenBatch& batch);
  void queue_information_and_factors();
  void queue_moments(Block& block);
  void queue_information(Block& block, int* flag);
  enum class Packing { pack, unpack };
  void move_packed_statistics(Packing direction);
  void queue_cross(Block& block, int* flag);
  void queue_embedding(Block& block, int* flag);
  void queue_layer_norm(Block& block, double tokens, int* flag, int* retries);
  void queue_solves();
  enum class Mark { begin, forward, backward, statistics, factors, solves, apply_begin, end };
  void mark(Mark at, cudaStream_t stream);
  void read_phases();
  void apply(Block& block);
  void share_parameters();

  KwmLinearizedConfig config_;
  LmCollectives host_;
  GptTransposeCuda model_;
  DeviceAllReduce reduce_;
  cusolverDnHandle_t solver_ = nullptr;  // on learner_stream()
  cudaStream_t side_ = nullptr;          // one rank: the statistics' and factors' stream
  cublasHandle_t side_blas_ = nullptr;
  cudaEvent_t forward_done_ = nullptr, learner_done_ = nullptr;
  TensorMath statistics_math_ = TensorMath::fp32;
  std::vector<cudaEvent_t> marks_;  // timed events, one per Mark, while phase timing is on
  Phases phases_;
  std::vector<Block> blocks_;
  std::vector<std::string> names_;
  std::vector<Batch> factor_batches_;
  // Solve batches per column width, kept for the learner's life: a captured solve graph points
  // into its width's pointer arrays, and the width is part of that graph's key.
  std::map<std::int64_t, std::vector<Batch>> solve_plans_;
  std::int64_t solve_columns_ = kDefaultSolveColumns;
  DeviceBuffer<int> status_;        // see step()
  DeviceBuffer<float> statistics_;  // every block's moments, summed over ranks
  std::size_t statistics_size_ = 0;
  // Several ranks: the statistics as they travel, each linear block's symmetric S as its lower
  // triangle (move_packed_statistics), every other block's moments as they are.
  DeviceBuffer<float> packed_;
  std::size_t packed_size_ = 0;
  std::vector<std::size_t> packed_offset_;  // per block, into packed_
  std::size_t parameter_count_ = 0;
  DeviceBuffer<float> solver_workspace_;
  DeviceBuffer<float> sums_;             // row_sums' partials (the learner stream's own)
  DeviceBuffer<float> gram_;             // one block's x x^T at an aligned leading dimension
  DeviceBuffer<__nv_bfloat16> rounded_;  // BF16 statistics: one block's inputs in bfloat16
  std::int64_t widest_ = 0;              // the widest statistics input
  std::int64_t steps_ = 0;
  std::int64_t skips_ = 0;
  std::int64_t block_skips_ = 0;
  std::int64_t jitter_retries_ = 0;
  StreamGraphs graphs_;  // last: its graphs go before the buffers they point into
};

}  // namespace kwm::lm::cuda
