// gradlens launch -n N -- <gradlens arguments>: N local ranks of this binary
// with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR=127.0.0.1, MASTER_PORT), their output forwarded line by line
// with a "[rank r] " prefix. Exits non-zero naming the rank(s) that failed;
// once one rank has failed, the others get `--timeout` seconds to finish (their
// collectives fail by themselves when a peer is gone) and are then terminated.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "gradlens/commands/commands.h"
#include "gradlens/commands/value_checks.h"
#include "gradlens/core/check.h"
#include "gradlens/distributed/launcher.h"

namespace gradlens::cli {

namespace {

struct LaunchConfig {
  int n = 2;
  int port = 0;
  double timeout = 300;
  std::vector<std::string> command;
};

// Writes complete lines of `buf` (all of it when `flush`) with the prefix.
void launch_emit(std::string& buf, std::ostream& os, int rank, bool flush) {
  size_t start = 0;
  for (;;) {
    const size_t nl = buf.find('\n', start);
    if (nl == std::string::npos) break;
    os << "[rank " << rank << "] " << buf.substr(start, nl - start) << "\n";
    start = nl + 1;
  }
  buf.erase(0, start);
  if (flush && !buf.empty()) {
    os << "[rank " << rank << "] " << buf << "\n";
    buf.clear();
  }
  os.flush();
}

int launch_run(const LaunchConfig& cfg, Context& ctx) {
  GRADLENS_CHECK(cfg.n >= 1, "launch -n must be >= 1, got ", cfg.n);
  GRADLENS_CHECK(!cfg.command.empty(), "launch: no command given; use 'gradlens launch -n N -- <command ...>'");
  GRADLENS_CHECK(cfg.timeout > 0, "launch --timeout must be > 0 seconds, got ", cfg.timeout);
  const int timeout_s = std::max(1, static_cast<int>(cfg.timeout + 0.5));
  distributed::LaunchOptions opts;
  opts.exe = std::filesystem::read_symlink("/proc/self/exe").string();
  opts.args = cfg.command;
  opts.world_size = cfg.n;
  opts.port = cfg.port > 0 ? cfg.port : distributed::free_loopback_port();
  GRADLENS_CHECK(opts.port > 0, "launch: could not find a free TCP port on 127.0.0.1; pass --port");
  opts.env["GRADLENS_DIST_TIMEOUT"] = std::to_string(timeout_s);

  std::ostream* streams[2] = {ctx.out, ctx.err};
  std::vector<std::string> pending(2 * static_cast<size_t>(cfg.n));
  const auto forward = [&](int rank, int stream, std::string_view bytes) {
    std::string& buf = pending[2 * rank + stream - 1];
    buf.append(bytes);
    launch_emit(buf, *streams[stream - 1], rank, false);
  };

  using Clock = std::chrono::steady_clock;
  distributed::RankGroup group(opts);
  bool announced = false, terminated = false, killed = false;
  Clock::time_point failed_at;
  while (group.poll(100, forward)) {
    const int failed = group.first_failure();
    if (failed < 0) continue;
    if (!announced) {
      announced = true;
      failed_at = Clock::now();
      *ctx.err << "gradlens launch: rank " << failed << " " << group.ends()[failed].describe()
               << "; the other ranks get " << timeout_s << " s (--timeout) to finish\n";
    }
    const double since = std::chrono::duration<double>(Clock::now() - failed_at).count();
    if (!terminated && since > timeout_s) {
      group.signal_running(SIGTERM);
      terminated = true;
    }
    if (!killed && since > timeout_s + 5) {
      group.signal_running(SIGKILL);
      killed = true;
    }
  }
  for (int r = 0; r < cfg.n; ++r)
    for (int s = 0; s < 2; ++s) launch_emit(pending[2 * r + s], *streams[s], r, true);

  std::string failed;
  for (int r = 0; r < cfg.n; ++r) {
    const auto& end = group.ends()[r];
    if (end.ok()) continue;
    failed += (failed.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r) + " " + end.describe();
  }
  if (failed.empty()) return 0;
  *ctx.err << "gradlens launch: failed: " << failed << "\n";
  return 1;
}

}  // namespace

void add_launch_command(CLI::App& app, Context& ctx) {
  auto cfg = std::make_shared<LaunchConfig>();
  auto* cmd = app.add_subcommand(
      "launch",
      "Run N local ranks of a gradlens command over c10d/Gloo (torchrun's environment, "
      "MASTER_ADDR=127.0.0.1, a free MASTER_PORT): gradlens launch -n 2 -- extract ...");
  cmd->add_option("-n,--nproc", cfg->n, "Number of ranks")->capture_default_str()->check(whole(1, max_workers(), "at most 4 x this machine's hardware threads"));
  cmd->add_option("--port", cfg->port, "MASTER_PORT (default: a free port)")->check(whole(1, 65535));
  cmd->add_option("--timeout", cfg->timeout,
                  "Seconds for rendezvous and each collective (GRADLENS_DIST_TIMEOUT), and before the "
                  "other ranks are terminated once one failed")
      ->capture_default_str()
      ->check(positive_real());
  cmd->add_option("command", cfg->command, "The gradlens arguments each rank runs (after --)")->required();
  cmd->callback([&ctx, cfg] {
    ctx.action = [&ctx, cfg] { return launch_run(*cfg, ctx); };
  });
}

}  // namespace gradlens::cli
