// Spawning ranks for the dist tests: the test binary re-executes itself
// (/proc/self/exe, through distributed::run_ranks) with --gtest_filter set to
// a worker test and torchrun's environment.
// Worker tests skip themselves unless GRADLENS_DIST_WORKER is set.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "gradlens/distributed/launcher.h"
#include "support/support.h"

namespace gradlens::test {

/// A TCP port on 127.0.0.1 that was free a moment ago.
inline int dist_free_port() { return distributed::free_loopback_port(); }

struct RankOutcome {
  int exit_code = -1;  ///< exit status, or -1 when killed by a signal
  int signal = 0;      ///< the signal that ended it, or 0
  std::string output;  ///< its stdout and stderr, in the order they arrived
  double seconds = 0;  ///< from the start to its end
};

/// Runs `world` ranks of this test binary (distributed::run_ranks), each
/// running only `worker_test` ("Suite.Name"), with GRADLENS_DIST_WORKER=1,
/// GRADLENS_DIST_DIR=dir and `extra` set; kills whatever still runs after
/// `limit_s`.
inline std::vector<RankOutcome> dist_spawn(const std::string& worker_test, int world, const fs::path& dir,
                                           const std::map<std::string, std::string>& extra = {},
                                           double limit_s = 120) {
  distributed::LaunchOptions opts;
  opts.exe = fs::read_symlink("/proc/self/exe").string();
  opts.argv0 = "dist-worker";
  opts.args = {"--gtest_filter=" + worker_test};
  opts.world_size = world;
  opts.env = extra;
  opts.env["GRADLENS_DIST_WORKER"] = "1";
  opts.env["GRADLENS_DIST_DIR"] = dir.string();
  std::vector<RankOutcome> out(world);
  const auto ends = distributed::run_ranks(
      opts, [&](int rank, int, std::string_view bytes) { out[rank].output.append(bytes); }, limit_s);
  for (int r = 0; r < world; ++r) {
    out[r].exit_code = ends[r].exit_code;
    out[r].signal = ends[r].signal;
    out[r].seconds = ends[r].seconds;
  }
  return out;
}

/// True in a spawned rank; worker tests GTEST_SKIP() otherwise.
inline bool dist_is_worker() { return std::getenv("GRADLENS_DIST_WORKER") != nullptr; }

/// The directory the spawning test shares with its ranks.
inline fs::path dist_dir() { return fs::path(std::getenv("GRADLENS_DIST_DIR")); }

}  // namespace gradlens::test
