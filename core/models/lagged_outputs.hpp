// The last p normalised observations, offered to a model as extra inputs (autoregressive lags).
#pragma once

#include <Eigen/Dense>

#include "core/models/parameter_group.hpp"

namespace kwm {

class LaggedOutputs {
 public:
  LaggedOutputs(Index channels, Index lags);

  // Every lag set to 0, the channel mean in normalised units.
  void reset();
  // Shifts in a new observation y_t (normalised). Missing entries (NaN) enter as 0 (mean
  // imputation), so the lag inputs never depend on the parameters.
  void push(const Eigen::VectorXd& y);
  // [y_{t-1}; y_{t-2}; ...; y_{t-p}], size channels * lags.
  void write(Eigen::Ref<Eigen::VectorXd> dst) const;
  Index size() const { return history_.size(); }
  // Checkpoint export/import: column k holds y_{t-1-k}. set_history checks the shape.
  const Eigen::MatrixXd& history() const { return history_; }
  void set_history(const Eigen::MatrixXd& history);

 private:
  Eigen::MatrixXd history_;  // column k holds y_{t-1-k}
};

}  // namespace kwm
