// Parameter groups: layout bookkeeping and lookups.
#include "core/models/parameter_group.hpp"

#include <stdexcept>

namespace kwm {

std::string to_string(GroupKind kind) {
  switch (kind) {
    case GroupKind::input:
      return "input";
    case GroupKind::recurrence:
      return "recurrence";
    case GroupKind::feedthrough:
      return "feedthrough";
    case GroupKind::innovation_gain:
      return "innovation_gain";
    case GroupKind::mixer:
      return "mixer";
    case GroupKind::linear_readout:
      return "linear_readout";
  }
  return "unknown";
}

Index ParameterLayout::add(std::string name, GroupKind kind, Index units, Index unit_size,
                           bool linear) {
  const Index offset = size_;
  if (units <= 0 || unit_size <= 0) return offset;
  groups_.push_back(
      ParameterGroup{std::move(name), kind, offset, units * unit_size, units, linear});
  size_ += units * unit_size;
  return offset;
}

Eigen::Map<const RowMajorMatrix> group_matrix(const Eigen::VectorXd& theta,
                                              const ParameterGroup& group) {
  if (group.offset + group.size > theta.size()) {
    throw std::invalid_argument("group " + group.name + " lies outside theta (size " +
                                std::to_string(theta.size()) + ")");
  }
  return Eigen::Map<const RowMajorMatrix>(theta.data() + group.offset, group.units,
                                          group.unit_size());
}

Index find_group(const std::vector<ParameterGroup>& groups, const std::string& name) {
  std::string known;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    if (groups[g].name == name) return static_cast<Index>(g);
    known += (g ? ", " : "") + groups[g].name;
  }
  throw std::out_of_range("no parameter group named '" + name + "'; groups are: " + known);
}

}  // namespace kwm
