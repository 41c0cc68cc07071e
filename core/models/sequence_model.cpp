// The model-independent half of a sequence model: validation, normalisation, lags, and the
// bookkeeping of per-group Jacobian blocks around the derived predict/commit.
#include "core/models/sequence_model.hpp"

#include <cmath>
#include <stdexcept>

namespace kwm {

Eigen::MatrixXd LinearizedPrediction::dense_jacobian() const {
  Index cols = 0;
  for (const auto& block : jacobian) cols += block.cols();
  Eigen::MatrixXd h(yhat.size(), cols);
  Index offset = 0;
  for (const auto& block : jacobian) {
    if (block.rows() != yhat.size()) {
      throw std::logic_error("dense_jacobian needs every group's block; request all of them");
    }
    h.middleCols(offset, block.cols()) = block;
    offset += block.cols();
  }
  return h;
}

Eigen::VectorXd shared_row_activation(const LinearizedPrediction& prediction,
                                      const std::vector<ParameterGroup>& groups, Index group) {
  const ParameterGroup& g = groups.at(static_cast<std::size_t>(group));
  if (!g.linear_in_parameters) {
    throw std::invalid_argument("group " + g.name + " is not linear in its parameters");
  }
  const Eigen::MatrixXd& block = prediction.jacobian.at(static_cast<std::size_t>(group));
  if (block.rows() == 0)
    throw std::logic_error("the Jacobian of group " + g.name + " was not requested");
  return block.row(0).head(g.unit_size()).transpose();
}

SequenceModel::SequenceModel(Index n_in, Index n_out, Index n_lags)
    : n_in_(n_in),
      n_out_(n_out),
      n_lags_(n_lags),
      normalization_(Normalization::identity(n_in, n_out)),
      lags_(n_out, n_lags),
      input_(Eigen::VectorXd::Zero(n_in + n_out * n_lags)) {
  if (n_in < 0 || n_out < 1 || n_lags < 0) {
    throw std::invalid_argument("model sizes need n_in >= 0, n_out >= 1, output_lags >= 0; got " +
                                std::to_string(n_in) + ", " + std::to_string(n_out) + ", " +
                                std::to_string(n_lags));
  }
}

void SequenceModel::set_layout(const ParameterLayout& layout, Eigen::VectorXd initial_theta) {
  groups_ = layout.groups();
  wanted_.assign(groups_.size(), true);
  prediction_.jacobian.resize(groups_.size());
  layout_size_ = layout.size();
  set_theta(initial_theta);
}

void SequenceModel::set_theta(const Eigen::VectorXd& theta) {
  if (theta.size() != layout_size_) {
    throw std::invalid_argument("theta needs " + std::to_string(layout_size_) + " entries; got " +
                                std::to_string(theta.size()));
  }
  if (!theta.allFinite()) throw std::invalid_argument("theta has a NaN or infinite entry");
  theta_ = theta;
  on_theta_changed();
}

const Eigen::MatrixXd& state_array(const RecurrentState& state, const std::string& name, Index rows,
                                   Index cols) {
  for (const auto& [key, array] : state) {
    if (key != name) continue;
    if (array.rows() != rows || array.cols() != cols)
      throw std::invalid_argument("recurrent state '" + name + "' must be " + std::to_string(rows) +
                                  " x " + std::to_string(cols) + "; got " +
                                  std::to_string(array.rows()) + " x " +
                                  std::to_string(array.cols()));
    return array;
  }
  throw std::invalid_argument("recurrent state '" + name + "' is missing");
}

RecurrentState SequenceModel::recurrent_state() const {
  if (stepped_) throw std::logic_error("recurrent_state() between step() and advance()");
  RecurrentState state{{"lags", lags_.history()}};
  export_state(state);
  return state;
}

void SequenceModel::set_recurrent_state(const RecurrentState& state) {
  const Eigen::MatrixXd lags = state_array(state, "lags", n_out_, n_lags_);
  import_state(state);
  lags_.set_history(lags);
  stepped_ = false;
}

void SequenceModel::reset() {
  reset_state();
  lags_.reset();
  stepped_ = false;
}

const LinearizedPrediction& SequenceModel::step(const Eigen::VectorXd& u) {
  if (u.size() != n_in_) {
    throw std::invalid_argument("step() needs " + std::to_string(n_in_) + " inputs; got " +
                                std::to_string(u.size()));
  }
  const Eigen::VectorXd u_normalized = normalization_.input.apply(u);
  for (Index i = 0; i < n_in_; ++i) input_(i) = std::isnan(u_normalized(i)) ? 0.0 : u_normalized(i);
  lags_.write(input_.tail(n_out_ * n_lags_));
  prediction_.yhat.resize(n_out_);
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    if (wanted_[g]) {
      prediction_.jacobian[g].resize(n_out_, groups_[g].size);
    } else {
      prediction_.jacobian[g].resize(0, 0);
    }
  }
  predict(input_, prediction_);
  stepped_ = true;
  return prediction_;
}

void SequenceModel::advance(const Eigen::VectorXd& y) {
  if (!stepped_) throw std::logic_error("advance() needs a step() for the same time first");
  if (y.size() != n_out_) {
    throw std::invalid_argument("advance() needs " + std::to_string(n_out_) +
                                " observations; got " + std::to_string(y.size()));
  }
  for (Index i = 0; i < n_out_; ++i) {
    if (std::isinf(y(i)))
      throw std::invalid_argument("observation " + std::to_string(i) + " is infinite");
  }
  const Eigen::VectorXd y_normalized = normalization_.output.apply(y);
  commit(y_normalized);
  lags_.push(y_normalized);
  stepped_ = false;
}

StabilityReport SequenceModel::project_to_stable(double margin) {
  if (!(margin > 0.0 && margin < 1.0)) {
    throw std::invalid_argument("stability margin must be in (0, 1); got " +
                                std::to_string(margin));
  }
  return project(margin);
}

void SequenceModel::request_jacobians(const std::vector<bool>& wanted) {
  if (wanted.size() != groups_.size()) {
    throw std::invalid_argument("request_jacobians needs one flag per group (" +
                                std::to_string(groups_.size()) + "); got " +
                                std::to_string(wanted.size()));
  }
  wanted_ = wanted;
}

void SequenceModel::set_normalization(const Normalization& normalization) {
  normalization.input.validate(n_in_, "inputs");
  normalization.output.validate(n_out_, "outputs");
  normalization_ = normalization;
}

Eigen::VectorXd SequenceModel::normalized_observation(const Eigen::VectorXd& y) const {
  return normalization_.output.apply(y);
}

Eigen::VectorXd SequenceModel::prediction_in_data_units(
    const LinearizedPrediction& prediction) const {
  return normalization_.output.invert(prediction.yhat);
}

void SequenceModel::store_jacobian_columns(Index theta_offset,
                                           const Eigen::Ref<const Eigen::MatrixXd>& block,
                                           LinearizedPrediction& prediction) const {
  const Index end = theta_offset + block.cols();
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const ParameterGroup& group = groups_[g];
    if (group.offset < theta_offset || group.offset + group.size > end || !wanted_[g]) continue;
    prediction.jacobian[g] = block.middleCols(group.offset - theta_offset, group.size);
  }
}

bool SequenceModel::any_requested(Index offset, Index size) const {
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const ParameterGroup& group = groups_[g];
    if (wanted_[g] && group.offset < offset + size && group.offset + group.size > offset)
      return true;
  }
  return false;
}

}  // namespace kwm
