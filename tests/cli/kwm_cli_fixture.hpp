// Shared by the kwm CLI tests: run the built program in a scratch folder and read what it
// printed and wrote.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace kwm_cli {

namespace fs = std::filesystem;

struct KwmRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) lines.push_back(line);
  return lines;
}

inline std::string data_dir() {
  if (const char* env = std::getenv("KWM_DATA_DIR"); env != nullptr && *env != '\0') return env;
  return (fs::path(KWM_SOURCE_DIR) / "data").string();
}

// A file of the data folder; throws (the test fails) when launch/fetch_data.sh has not run.
inline std::string data_file(const std::string& name) {
  const auto path = fs::path(data_dir()) / name;
  if (!fs::exists(path)) {
    throw std::runtime_error(path.string() + " is missing: run launch/fetch_data.sh");
  }
  return path.string();
}

// A fresh folder per test; kwm runs inside it.
class KwmCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kwm_cli_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs kwm with `args` (already shell-quoted where needed) in the test's folder.
  KwmRun kwm(const std::string& args) const {
    const std::string cmd =
        "cd '" + dir_.string() + "' && '" + KWM_BINARY + "' " + args + " >stdout.txt 2>stderr.txt";
    const int status = std::system(cmd.c_str());
    KwmRun r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(dir_ / "stdout.txt");
    r.err = slurp(dir_ / "stderr.txt");
    return r;
  }

  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }

  fs::path dir_;
};

}  // namespace kwm_cli
