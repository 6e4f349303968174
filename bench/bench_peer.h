// Running a benchmark's Python peer and reading the "key value" lines it
// prints (shared by the extract, saliency and evaluate benches).
#pragma once

#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>

namespace gradlens::bench {

/// Runs `command` through the shell and returns everything it printed on
/// stdout (append " 2>&1" to the command to include stderr).
inline std::string run_peer(const std::string& command) {
  std::string out;
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  return out;
}

/// The environment prefix that gives a peer process the malloc settings
/// gradlens programs make with core::keep_freed_memory(), so a benchmark can
/// report the ratio with and without that advantage.
inline const char* kPeerKeepFreedMemoryEnv =
    "MALLOC_MMAP_MAX_=0 MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=2147483647 MALLOC_TOP_PAD_=67108864 ";

/// The peer's output lines of the form "key number", by key (a later line
/// with the same key wins); other lines are ignored.
class PeerValues {
 public:
  explicit PeerValues(const std::string& output) {
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream ls(line);
      std::string key;
      double v = 0.0;
      if (ls >> key >> v) values_[key] = v;
    }
  }
  /// The value printed for `key`, or NaN when the peer did not print it.
  double operator()(const std::string& key) const {
    const auto it = values_.find(key);
    return it == values_.end() ? std::nan("") : it->second;
  }

 private:
  std::map<std::string, double> values_;
};

}  // namespace gradlens::bench
