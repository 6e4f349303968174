// Spawning ranks for the dist tests: the test binary re-executes itself
// (/proc/self/exe) with --gtest_filter set to a worker test and torchrun's
// environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1,
// MASTER_PORT), so no rank inherits LibTorch's thread pools through fork.
// Worker tests skip themselves unless GRADLENS_DIST_WORKER is set.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gradlens/distributed/port.h"
#include "support/support.h"

namespace gradlens::test {

/// A TCP port on 127.0.0.1 that was free a moment ago.
inline int dist_free_port() { return distributed::free_loopback_port(); }

struct RankOutcome {
  int exit_code = -1;  ///< exit status, or -1 when killed by a signal
  int signal = 0;      ///< the signal that ended it, or 0
  std::string output;  ///< its stdout and stderr
  double seconds = 0;  ///< from the start to its end
};

/// Runs `world` ranks of this test binary, each running only `worker_test`
/// ("Suite.Name"), with GRADLENS_DIST_WORKER=1, GRADLENS_DIST_DIR=dir and
/// `extra` set; kills whatever still runs after `limit_s`.
inline std::vector<RankOutcome> dist_spawn(const std::string& worker_test, int world, const fs::path& dir,
                                           const std::map<std::string, std::string>& extra = {},
                                           double limit_s = 120) {
  const int port = dist_free_port();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    const std::string log = (dir / ("rank" + std::to_string(r) + ".log")).string();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setenv("GRADLENS_DIST_WORKER", "1", 1);
      ::setenv("GRADLENS_DIST_DIR", dir.c_str(), 1);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      for (const auto& [k, v] : extra) ::setenv(k.c_str(), v.c_str(), 1);
      FILE* f = std::freopen(log.c_str(), "w", stdout);
      if (f) ::dup2(::fileno(stdout), 2);
      const std::string filter = "--gtest_filter=" + worker_test;
      execl("/proc/self/exe", "dist-worker", filter.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    pids.push_back(pid);
  }
  std::vector<RankOutcome> out(world);
  std::vector<bool> done(world, false);
  int left = world;
  while (left > 0) {
    for (int r = 0; r < world; ++r) {
      if (done[r]) continue;
      int st = 0;
      if (::waitpid(pids[r], &st, WNOHANG) == pids[r]) {
        done[r] = true;
        --left;
        out[r].seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (WIFEXITED(st)) out[r].exit_code = WEXITSTATUS(st);
        if (WIFSIGNALED(st)) out[r].signal = WTERMSIG(st);
      }
    }
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > limit_s) {
      for (int r = 0; r < world; ++r)
        if (!done[r]) ::kill(pids[r], SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int r = 0; r < world; ++r) {
    std::ifstream f(dir / ("rank" + std::to_string(r) + ".log"));
    std::stringstream ss;
    ss << f.rdbuf();
    out[r].output = ss.str();
  }
  return out;
}

/// True in a spawned rank; worker tests GTEST_SKIP() otherwise.
inline bool dist_is_worker() { return std::getenv("GRADLENS_DIST_WORKER") != nullptr; }

/// The directory the spawning test shares with its ranks.
inline fs::path dist_dir() { return fs::path(std::getenv("GRADLENS_DIST_DIR")); }

}  // namespace gradlens::test
