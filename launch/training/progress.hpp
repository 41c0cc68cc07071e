// Progress display: a bar with rate and ETA on a terminal, plain periodic log lines otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace kwm::launch {

class Progress {
 public:
  // total: steps expected; label: what is counted ("train", "epoch 2/10").
  Progress(std::int64_t total, std::string label, bool enabled);
  // Called after every step; redraws at most ~10 times a second (terminal) or logs every 10%.
  void tick(std::int64_t done, const std::string& status = "");
  void finish();

 private:
  double seconds() const;
  std::int64_t total_;
  std::string label_;
  bool enabled_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  double last_draw_ = -1.0;
  std::int64_t next_log_ = 0;
};

}  // namespace kwm::launch
