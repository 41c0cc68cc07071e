// probe_metadata: the parent side (spawn, capture, wait with a deadline, map the outcome to a
// CheckpointError) and run_metadata_probe: the child side.
//
// Why a separate small program started with posix_spawn, and not fork() or kwm itself:
//  - fork() in a process that may already be inside MPI_Init is unsafe (Open MPI warns about it:
//    registered memory, progress threads); glibc's posix_spawn uses clone(CLONE_VM|CLONE_VFORK)
//    and execs at once, so nothing of the parent's MPI or CUDA state runs in the child.
//  - Re-running kwm (/proc/self/exe with a hidden subcommand) would start kwm's own main in the
//    child: its logging, CLI and, under mpirun, the OMPI_* environment it inherits, which can make
//    an MPI build try to join the job. kwm-checkpoint-probe links only the HDF5 layer.
//  - A plain exec leaves the child's stdout and stderr to us: HDF5's and a sanitizer's reports
//    are captured, and only a one-line summary reaches the user.
#include "distributed/checkpoint/metadata_probe.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>

#include "distributed/checkpoint/hdf5_file.hpp"

extern char** environ;

#ifndef KWM_CHECKPOINT_PROBE_BUILD_PATH
#define KWM_CHECKPOINT_PROBE_BUILD_PATH ""
#endif

namespace kwm::checkpoint {
namespace fs = std::filesystem;
namespace {

constexpr int kCleanErrorStatus = 3;
constexpr std::size_t kCaptureLimit = 1 << 16;  // bytes kept of each of the child's streams

// Beside the running program (an installed or built kwm), else where the build tree put it (the
// test programs live elsewhere in the build tree).
fs::path probe_program() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (!error && fs::exists(self.parent_path() / kProbeProgram))
    return self.parent_path() / kProbeProgram;
  const fs::path built = KWM_CHECKPOINT_PROBE_BUILD_PATH;
  if (!built.empty() && fs::exists(built)) return built;
  throw CheckpointError(std::string(kProbeProgram) + " not found beside " + self.string() +
                        (built.empty() ? "" : " nor at " + built.string()) +
                        ": cannot check a checkpoint's HDF5 metadata safely (reinstall kwm)");
}

double timeout_seconds() {
  if (const char* text = std::getenv("KWM_CHECKPOINT_PROBE_TIMEOUT_S")) {
    char* end = nullptr;
    const double seconds = std::strtod(text, &end);
    if (end != text && *end == '\0' && seconds > 0) return seconds;
  }
  return kProbeTimeoutSeconds;
}

// The environment for the child: ours, except that a leak report of an ASan build is not wanted
// (the child exits at once; a leak there is HDF5's on an error path and harmless).
std::vector<std::string> child_environment() {
  std::vector<std::string> env;
  std::string asan = "ASAN_OPTIONS=detect_leaks=0";
  for (char** e = environ; *e; ++e) {
    const std::string_view entry(*e);
    if (entry.rfind("ASAN_OPTIONS=", 0) == 0)
      asan = std::string(entry) + ":detect_leaks=0";
    else
      env.emplace_back(entry);
  }
  env.push_back(asan);
  return env;
}

std::string signal_name(int sig) {
  if (const char* abbrev = sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(sig);
}

bool is_crash_signal(int sig) {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || sig == SIGFPE || sig == SIGILL ||
         sig == SIGTRAP || sig == SIGSYS;
}

// One line of `text` starting with `prefix` (without the prefix), or empty.
std::string line_after(const std::string& text, std::string_view prefix, bool last) {
  std::string found;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + at, end - at);
    if (line.substr(0, prefix.size()) == prefix) {
      found = std::string(line.substr(prefix.size()));
      if (!last) return found;
    }
    at = end + 1;
  }
  return found;
}

// A sanitizer's one-line summary ("AddressSanitizer: SEGV on unknown address ..."), if any.
std::string sanitizer_summary(const std::string& err) {
  for (std::string_view tag : {"ERROR: AddressSanitizer: ", "ERROR: LeakSanitizer: ",
                               "ERROR: UndefinedBehaviorSanitizer: "}) {
    const std::size_t at = err.find(tag);
    if (at == std::string::npos) continue;
    const std::size_t from = at + std::string_view("ERROR: ").size();
    std::string line = err.substr(from, err.find('\n', from) - from);
    if (const std::size_t pc = line.find(" (pc "); pc != std::string::npos) line.resize(pc);
    return line;
  }
  const std::size_t ub = err.find("runtime error: ");
  if (ub != std::string::npos) return err.substr(ub, err.find('\n', ub) - ub);
  return {};
}

struct ChildOutcome {
  int status = 0;
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Reads both pipes until they close or the deadline passes (then the child is killed); reaps it.
ChildOutcome wait_for(pid_t pid, int out_fd, int err_fd, double seconds) {
  ChildOutcome outcome;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&outcome.out, &outcome.err};
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      outcome.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    const int ready = ::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < 2 && ready > 0; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t got = ::read(fds[i].fd, buffer, sizeof buffer);
      if (got > 0) {
        if (sinks[i]->size() < kCaptureLimit) sinks[i]->append(buffer, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        fds[i].fd = -1;  // closed: poll ignores negative descriptors
        --open_fds;
      }
    }
  }
  while (::waitpid(pid, &outcome.status, 0) < 0 && errno == EINTR) {
  }
  return outcome;
}

}  // namespace

void probe_metadata(const std::vector<fs::path>& files) {
  if (files.empty()) return;
  const fs::path program = probe_program();
  std::vector<std::string> args{program.string()};
  for (const fs::path& f : files) args.push_back(f.string());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = child_environment();
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw CheckpointError("cannot create a pipe for the probe");
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    throw CheckpointError("cannot create a pipe for the probe");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
  // Nothing else of kwm's (MPI sockets, open files) stays open in the child.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
  // Its own process group: a Ctrl-C at the terminal reaches kwm (which decides), not the probe,
  // so an interrupted probe is never mistaken for a corrupt file. Default signal dispositions
  // and an empty mask, whatever kwm has set up for itself.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all;
  sigset_t none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  const int spawned =
      ::posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(out[1]);
  ::close(err[1]);
  if (spawned != 0) {
    ::close(out[0]);
    ::close(err[0]);
    throw CheckpointError(files.front().string() + ": cannot run " + program.string() + ": " +
                          std::strerror(spawned));
  }
  const double seconds = timeout_seconds();
  const ChildOutcome outcome = wait_for(pid, out[0], err[0], seconds);
  ::close(out[0]);
  ::close(err[0]);

  // The file being walked when it ended: the last one the child announced.
  std::string file = line_after(outcome.out, "file ", true);
  if (file.empty()) file = files.front().string();
  const std::string clean = line_after(outcome.out, "error ", false);
  const int status = outcome.status;
  if (outcome.timed_out) {
    char limit[32];
    std::snprintf(limit, sizeof limit, "%g", seconds);
    throw CheckpointError(file + ": HDF5 did not finish reading the file's metadata within " +
                          limit + " s (the probe was stopped); the file is corrupt");
  }
  if (!clean.empty()) throw CheckpointError(clean);  // the reader's own error, found in the child
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  const std::string summary = sanitizer_summary(outcome.err);
  if (WIFSIGNALED(status) && !is_crash_signal(WTERMSIG(status)))
    throw CheckpointError(file + ": the metadata probe was killed by " +
                          signal_name(WTERMSIG(status)) + "; the file was not checked");
  const std::string how = WIFSIGNALED(status) ? signal_name(WTERMSIG(status))
                          : !summary.empty()  ? summary
                                             : "exit status " + std::to_string(WEXITSTATUS(status));
  throw CheckpointError(file + ": HDF5 crashed (" + how +
                        ") reading the file's metadata; the file is corrupt");
}

int run_metadata_probe(int argc, char** argv) {
  // A crash here is an expected outcome: it must leave no core file behind, and it must not
  // outlive kwm (a loop in HDF5 after kwm was killed).
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (int i = 1; i < argc; ++i) {
    std::cout << "file " << argv[i] << std::endl;  // flushed: the parent must see it before a crash
    try {
      const Hdf5File file = Hdf5File::open_unprobed(argv[i]);
      (void)file.walk_metadata();
    } catch (const CheckpointError& e) {
      std::string message = e.what();
      for (char& c : message)
        if (c == '\n') c = ' ';
      std::cout << "error " << message << std::endl;
      return kCleanErrorStatus;
    }
  }
  return 0;
}

}  // namespace kwm::checkpoint
