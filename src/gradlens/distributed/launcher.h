// Local ranks: N processes of one program on this machine with torchrun's
// environment, their output on pipes. One launcher for `gradlens launch`, the
// distributed tests and dist_bench. Ranks are fork + exec'd, so none inherits
// LibTorch's thread pools.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace gradlens::distributed {

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice
/// when binding port 0). Another process may take it before it is used, so
/// callers still handle "address in use". Returns 0 when no socket could be
/// bound.
int free_loopback_port();

/// What RankGroup starts.
struct LaunchOptions {
  std::string exe;                ///< the program every rank runs (a path)
  std::string argv0;              ///< argv[0] (empty: exe)
  std::vector<std::string> args;  ///< argv[1], argv[2], ...
  int world_size = 1;             ///< ranks, >= 1
  int port = 0;                   ///< MASTER_PORT (0: free_loopback_port())
  /// Set in every rank after torchrun's variables (and overriding them);
  /// every other variable is inherited.
  std::map<std::string, std::string> env;
};

/// How a rank ended.
struct RankEnd {
  bool running = true;  ///< not reaped yet
  int exit_code = -1;   ///< its exit status, or -1 when a signal ended it
  int signal = 0;       ///< the signal that ended it, or 0
  double seconds = 0;   ///< from the start of the group to its end
  bool ok() const { return !running && exit_code == 0; }
  /// "exited with 1", "killed by signal 9 (Killed)".
  std::string describe() const;
};

/// Receives a rank's output as it arrives: stream 1 = stdout, 2 = stderr;
/// `bytes` is any chunk (not necessarily whole lines).
using RankOutputFn = std::function<void(int rank, int stream, std::string_view bytes)>;

/// `world_size` running ranks. Each gets RANK = LOCAL_RANK = r, WORLD_SIZE =
/// LOCAL_WORLD_SIZE = world_size, MASTER_ADDR = 127.0.0.1 and MASTER_PORT
/// (replacing inherited values), then LaunchOptions::env; its stdout and
/// stderr go to pipes that poll() reads.
class RankGroup {
 public:
  /// Starts the ranks. Throws c10::Error when world_size < 1, no free port
  /// was found, or pipe()/fork() fails (ranks already started are killed).
  /// A program that cannot be executed ends its rank with exit code 127.
  explicit RankGroup(const LaunchOptions& opts);
  /// Kills (SIGKILL) and reaps ranks still running.
  ~RankGroup();
  RankGroup(const RankGroup&) = delete;
  RankGroup& operator=(const RankGroup&) = delete;

  /// Waits up to wait_ms for output, hands what arrived to on_output (may be
  /// empty), and reaps ranks that ended. Returns false once every rank has
  /// ended and its output has been read to the end.
  bool poll(int wait_ms, const RankOutputFn& on_output);
  /// Sends `sig` to every rank still running.
  void signal_running(int sig);
  /// The first rank that ended other than with exit code 0 (in the order
  /// they were reaped), or -1.
  int first_failure() const { return first_failure_; }
  const std::vector<RankEnd>& ends() const { return ends_; }
  int port() const { return port_; }

 private:
  struct Rank;
  std::vector<Rank> ranks_;
  std::vector<RankEnd> ends_;
  int port_ = 0;
  int first_failure_ = -1;
  double started_ = 0;  ///< steady clock, seconds
};

/// Runs a RankGroup to its end, handing output to on_output (may be empty:
/// discarded); ranks still running after limit_s seconds (0: no limit) are
/// killed with SIGKILL. Returns how each rank ended.
std::vector<RankEnd> run_ranks(const LaunchOptions& opts, const RankOutputFn& on_output, double limit_s = 0);

}  // namespace gradlens::distributed
