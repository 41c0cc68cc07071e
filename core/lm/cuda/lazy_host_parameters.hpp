// The fp64 host copy of parameters that live on a device, as the GPU learners' parameters()
// returns it: whatever changes the device values (a step, a restore, a shifted head bias) marks
// the copy stale, and only the next read refreshes it (one device wait), so a run that reads the
// parameters only for evaluation, checkpoints and generation does not copy them back after every
// step. Used by KwmLinearizedCudaLearner, RlsHeadCudaLearner and EnsembleCudaLearner.
#pragma once

#include <utility>

#include "core/lm/gpt_parameters.hpp"

namespace kwm::lm::cuda {

class LazyHostParameters {
 public:
  LazyHostParameters() = default;  // stale: the first get() refreshes
  // Current with `values` (what the device holds, already on the host).
  explicit LazyHostParameters(GptParameters<double> values) { set(std::move(values)); }

  // The device holds `values` (already read back): current without a refresh.
  void set(GptParameters<double> values) {
    host_ = std::move(values);
    current_ = true;
  }
  // The device values changed: the next get() refreshes.
  void mark_stale() { current_ = false; }

  // The copy, refreshed first when stale: refresh(host) brings `host` up to the device values in
  // place (all of them, or only those the device changes). A refresh that throws leaves it stale.
  template <typename Refresh>
  const GptParameters<double>& get(Refresh&& refresh) const {
    if (!current_) {
      refresh(host_);
      current_ = true;
    }
    return host_;
  }

  // The copy as of the last refresh or set(), without a refresh: for what the device never
  // changes (the config, the shapes).
  const GptParameters<double>& last_synced() const { return host_; }

 private:
  mutable GptParameters<double> host_;
  mutable bool current_ = false;
};

}  // namespace kwm::lm::cuda
