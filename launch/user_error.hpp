// UserError: a mistake in what the user gave us (arguments, config, data). main() prints
// "error: <message>" as one line on stderr and exits with code 2; nothing is written.
#pragma once

#include <stdexcept>

namespace kwm::launch {

inline constexpr int kUserErrorExitCode = 2;

class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace kwm::launch
