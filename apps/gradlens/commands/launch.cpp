// gradlens launch -n N -- <gradlens arguments>: N local ranks of this binary
// with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR=127.0.0.1, MASTER_PORT), their output forwarded line by line
// with a "[rank r] " prefix. Exits non-zero naming the rank(s) that failed;
// once one rank has failed, the others get `--timeout` seconds to finish (their
// collectives fail by themselves when a peer is gone) and are then terminated.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "gradlens/commands/commands.h"
#include "gradlens/commands/value_checks.h"
#include "gradlens/core/check.h"
#include "gradlens/distributed/port.h"

extern char** environ;

namespace gradlens::cli {

namespace {

struct LaunchConfig {
  int n = 2;
  int port = 0;
  double timeout = 300;
  std::vector<std::string> command;
};

struct LaunchRank {
  pid_t pid = -1;
  int fds[2] = {-1, -1};  // stdout, stderr read ends
  std::string pending[2];
  bool running = true;
  int status = 0;
  std::string how;  // "exited with 1", "killed by signal 9"
};

std::string launch_describe(int status) {
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                  ::strsignal(WTERMSIG(status)) + ")";
  return "ended with status " + std::to_string(status);
}

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
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  const int port = cfg.port > 0 ? cfg.port : distributed::free_loopback_port();
  GRADLENS_CHECK(port > 0, "launch: could not find a free TCP port on 127.0.0.1; pass --port");
  std::ostream* streams[2] = {ctx.out, ctx.err};

  // argv and environment are built before fork (the child only dup2s and execs).
  std::vector<std::string> args{exe};
  args.insert(args.end(), cfg.command.begin(), cfg.command.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::vector<std::string> overridden{"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                                            "MASTER_ADDR", "MASTER_PORT", "GRADLENS_DIST_TIMEOUT"};
  std::vector<std::string> base_env;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv(*e);
    const std::string key = kv.substr(0, kv.find('='));
    bool skip = false;
    for (const auto& o : overridden) skip = skip || key == o;
    if (!skip) base_env.push_back(kv);
  }
  const int timeout_s = std::max(1, static_cast<int>(cfg.timeout + 0.5));

  std::vector<LaunchRank> ranks(cfg.n);
  for (int r = 0; r < cfg.n; ++r) {
    std::vector<std::string> env = base_env;
    env.push_back("RANK=" + std::to_string(r));
    env.push_back("LOCAL_RANK=" + std::to_string(r));
    env.push_back("WORLD_SIZE=" + std::to_string(cfg.n));
    env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(cfg.n));
    env.push_back("MASTER_ADDR=127.0.0.1");
    env.push_back("MASTER_PORT=" + std::to_string(port));
    env.push_back("GRADLENS_DIST_TIMEOUT=" + std::to_string(timeout_s));
    std::vector<char*> envp;
    for (auto& kv : env) envp.push_back(kv.data());
    envp.push_back(nullptr);
    int out_pipe[2], err_pipe[2];
    GRADLENS_CHECK(::pipe(out_pipe) == 0 && ::pipe(err_pipe) == 0, "launch: pipe() failed: ", std::strerror(errno));
    const pid_t pid = ::fork();
    GRADLENS_CHECK(pid >= 0, "launch: fork() failed for rank ", r, ": ", std::strerror(errno));
    if (pid == 0) {
      ::dup2(out_pipe[1], 1);
      ::dup2(err_pipe[1], 2);
      ::close(out_pipe[0]);
      ::close(err_pipe[0]);
      ::close(out_pipe[1]);
      ::close(err_pipe[1]);
      ::execve(exe.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    ranks[r].pid = pid;
    ranks[r].fds[0] = out_pipe[0];
    ranks[r].fds[1] = err_pipe[0];
  }

  using Clock = std::chrono::steady_clock;
  bool any_failed = false, terminated = false, killed = false;
  Clock::time_point failed_at;
  for (;;) {
    std::vector<pollfd> pfds;
    std::vector<std::pair<int, int>> who;  // (rank, stream)
    for (int r = 0; r < cfg.n; ++r)
      for (int s = 0; s < 2; ++s)
        if (ranks[r].fds[s] >= 0) {
          pfds.push_back({ranks[r].fds[s], POLLIN, 0});
          who.emplace_back(r, s);
        }
    bool anyone_running = false;
    for (const auto& rk : ranks) anyone_running = anyone_running || rk.running;
    if (pfds.empty() && !anyone_running) break;
    if (!pfds.empty()) ::poll(pfds.data(), pfds.size(), 100);
    else ::usleep(100000);
    for (size_t i = 0; i < pfds.size(); ++i) {
      if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      auto& rk = ranks[who[i].first];
      const int s = who[i].second;
      char buf[8192];
      const ssize_t got = ::read(pfds[i].fd, buf, sizeof(buf));
      if (got > 0) {
        rk.pending[s].append(buf, static_cast<size_t>(got));
        launch_emit(rk.pending[s], *streams[s], who[i].first, false);
      } else {
        launch_emit(rk.pending[s], *streams[s], who[i].first, true);
        ::close(rk.fds[s]);
        rk.fds[s] = -1;
      }
    }
    for (int r = 0; r < cfg.n; ++r) {
      auto& rk = ranks[r];
      if (!rk.running) continue;
      int st = 0;
      if (::waitpid(rk.pid, &st, WNOHANG) == rk.pid) {
        rk.running = false;
        rk.status = st;
        rk.how = launch_describe(st);
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0) && !any_failed) {
          any_failed = true;
          failed_at = Clock::now();
          *ctx.err << "gradlens launch: rank " << r << " " << rk.how << "; the other ranks get " << timeout_s
                   << " s (--timeout) to finish\n";
        }
      }
    }
    if (any_failed) {
      const double since = std::chrono::duration<double>(Clock::now() - failed_at).count();
      if (!terminated && since > timeout_s) {
        for (auto& rk : ranks)
          if (rk.running) ::kill(rk.pid, SIGTERM);
        terminated = true;
      }
      if (!killed && since > timeout_s + 5) {
        for (auto& rk : ranks)
          if (rk.running) ::kill(rk.pid, SIGKILL);
        killed = true;
      }
    }
  }
  std::string failed;
  for (int r = 0; r < cfg.n; ++r) {
    const int st = ranks[r].status;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) continue;
    failed += (failed.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r) + " " + ranks[r].how;
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
