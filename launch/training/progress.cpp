// Progress bar on stderr (never stdout: stdout carries the --json line).
#include "launch/training/progress.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

namespace kwm::launch {

Progress::Progress(std::int64_t total, std::string label, bool enabled)
    : total_(total > 0 ? total : 1),
      label_(std::move(label)),
      enabled_(enabled),
      terminal_(isatty(STDERR_FILENO) != 0) {}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::tick(std::int64_t done, const std::string& status) {
  if (!enabled_) return;
  const double elapsed = seconds();
  const double rate = elapsed > 0 ? double(done) / elapsed : 0.0;
  const double eta = rate > 0 ? double(total_ - done) / rate : 0.0;
  if (terminal_) {
    if (elapsed - last_draw_ < 0.1 && done < total_) return;
    last_draw_ = elapsed;
    constexpr int kWidth = 30;
    const int filled = int(kWidth * double(done) / double(total_));
    std::fprintf(stderr, "\r%s [%s%s] %3d%% %lld/%lld %.0f steps/s ETA %.0fs %s\033[K",
                 label_.c_str(), std::string(std::size_t(filled), '#').c_str(),
                 std::string(std::size_t(kWidth - filled), ' ').c_str(),
                 int(100.0 * double(done) / double(total_)), static_cast<long long>(done),
                 static_cast<long long>(total_), rate, eta, status.c_str());
    std::fflush(stderr);
  } else if (done >= next_log_) {
    spdlog::info("{} {}/{} ({:.0f}%) {:.0f} steps/s ETA {:.0f}s {}", label_, done, total_,
                 100.0 * double(done) / double(total_), rate, eta, status);
    next_log_ = done + std::max<std::int64_t>(1, total_ / 10);
  }
}

void Progress::finish() {
  if (enabled_ && terminal_) std::fprintf(stderr, "\n");
}

}  // namespace kwm::launch
