// Progress reporting from library code: an optional callback, no printing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace gradlens::core {

/// One progress update. `done`/`total` count work units of `stage` (steps,
/// images, iterations); `values` carries named live metrics (loss, acc, ...).
struct ProgressEvent {
  std::string stage;
  int64_t done = 0;
  int64_t total = 0;
  double elapsed_s = 0.0;
  std::vector<std::pair<std::string, double>> values;
  /// True for the last event of a stage (e.g. the end of an epoch).
  bool stage_end = false;
  /// Free-form note for the end of a stage ("epoch 3/8 test acc 91.2%").
  std::string note;
};

using ProgressFn = std::function<void(const ProgressEvent&)>;

/// Calls `fn` if set.
inline void report(const ProgressFn& fn, const ProgressEvent& ev) {
  if (fn) fn(ev);
}

}  // namespace gradlens::core
