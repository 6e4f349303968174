// Wall-clock stage timing for results that report seconds per stage.
#pragma once

#include <chrono>

namespace gradlens::core {

/// Seconds since construction (or the last restart()), on the steady clock.
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  /// Returns seconds() and starts counting again from now.
  double restart() {
    const double s = seconds();
    start_ = std::chrono::steady_clock::now();
    return s;
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace gradlens::core
