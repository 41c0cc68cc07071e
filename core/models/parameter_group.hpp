// Named parameter groups: contiguous ranges of a model's parameter vector theta, each with a
// kind and a unit count, so a learner can block its covariance per group, per unit or per entry.
#pragma once

#include <Eigen/Dense>
#include <string>
#include <vector>

namespace kwm {

using Index = Eigen::Index;
using RowMajorMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

enum class GroupKind {
  input,            // input projection W_in (diagonal stack) or B (innovation SSM)
  recurrence,       // recurrent dynamics: A (SSM) or (nu, theta, B, C) of one diagonal layer
  feedthrough,      // per-channel skip D of a diagonal layer
  innovation_gain,  // K of the innovation-form SSM
  mixer,            // channel-mixer weights between diagonal layers
  linear_readout,   // yhat = W a: the output rows (C D) of the SSM or the stack's readout
};

std::string to_string(GroupKind kind);

// A group is `units` equal, contiguous sub-blocks (one state, one neuron, one output row).
// Matrix-shaped groups are stored row by row (unit i = row i), so Eigen::Map<RowMajorMatrix>
// over the group's range gives the matrix.
struct ParameterGroup {
  std::string name;  // "layer1.recurrence", "readout", "A"
  GroupKind kind = GroupKind::input;
  Index offset = 0;  // first index into theta
  Index size = 0;    // number of parameters
  Index units = 1;   // number of equal sub-blocks
  // True when yhat_t = W a_t for this group's matrix W (units x unit_size) and an activation a_t
  // that does not depend on W at any t, so row i of d yhat / d W is a_t^T placed in unit i:
  // the exact shared-row case of ALGORITHMS.md section 4 (5(a): H is the input activation).
  bool linear_in_parameters = false;

  Index unit_size() const { return size / units; }
};

// Builds the group list while a model lays out theta, in order.
class ParameterLayout {
 public:
  // Appends a group of `units` x `unit_size` parameters and returns its offset. Empty groups
  // (units or unit_size zero) are not recorded.
  Index add(std::string name, GroupKind kind, Index units, Index unit_size, bool linear = false);
  Index size() const { return size_; }
  const std::vector<ParameterGroup>& groups() const { return groups_; }

 private:
  std::vector<ParameterGroup> groups_;
  Index size_ = 0;
};

// The group's parameters as a units x unit_size matrix (row i = unit i).
Eigen::Map<const RowMajorMatrix> group_matrix(const Eigen::VectorXd& theta,
                                              const ParameterGroup& group);

// Index of the group called `name`; throws std::out_of_range naming the known groups otherwise.
Index find_group(const std::vector<ParameterGroup>& groups, const std::string& name);

}  // namespace kwm
