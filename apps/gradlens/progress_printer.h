// Renders core::ProgressEvent for a person: a live bar on a terminal, plain
// periodic lines otherwise (logs, CI).
#pragma once

#include <chrono>
#include <iosfwd>
#include <string>

#include "gradlens/core/progress.h"

namespace gradlens::cli {

class ProgressPrinter {
 public:
  /// `tty`: draw a live bar with \r; else print one line per `interval_s`
  /// and at the end of each stage.
  ProgressPrinter(std::ostream& out, bool tty, double interval_s = 10.0);
  void operator()(const core::ProgressEvent& ev);
  core::ProgressFn fn();

  /// True if file descriptor 2 (where progress goes, apart from results on
  /// stdout) is a terminal.
  static bool stderr_is_tty();

 private:
  std::ostream& out_;
  bool tty_;
  double interval_s_;
  std::chrono::steady_clock::time_point last_;
  bool drawn_ = false;
};

/// "1m05s" / "42s".
std::string format_duration(double s);

}  // namespace gradlens::cli
