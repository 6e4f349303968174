#include "gradlens/distributed/launcher.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "gradlens/core/check.h"

extern char** environ;

namespace gradlens::distributed {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

std::string RankEnd::describe() const {
  if (running) return "still running";
  if (signal != 0) return "killed by signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
  return "exited with " + std::to_string(exit_code);
}

struct RankGroup::Rank {
  pid_t pid = -1;
  int fds[2] = {-1, -1};  // stdout, stderr read ends
};

RankGroup::RankGroup(const LaunchOptions& opts) : started_(now_s()) {
  GRADLENS_CHECK(opts.world_size >= 1, "distributed::RankGroup: world_size must be >= 1, got ", opts.world_size);
  GRADLENS_CHECK(!opts.exe.empty(), "distributed::RankGroup: no program given");
  port_ = opts.port > 0 ? opts.port : free_loopback_port();
  GRADLENS_CHECK(port_ > 0, "distributed::RankGroup: could not find a free TCP port on 127.0.0.1; give one");

  // argv and every environment are built before fork: the child only dup2s
  // and execs (the parent may run other threads).
  std::vector<std::string> args{opts.argv0.empty() ? opts.exe : opts.argv0};
  args.insert(args.end(), opts.args.begin(), opts.args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int world = opts.world_size;
  std::vector<std::vector<std::string>> envs(world);
  for (int r = 0; r < world; ++r) {
    std::map<std::string, std::string> set{{"RANK", std::to_string(r)},
                                           {"LOCAL_RANK", std::to_string(r)},
                                           {"WORLD_SIZE", std::to_string(world)},
                                           {"LOCAL_WORLD_SIZE", std::to_string(world)},
                                           {"MASTER_ADDR", "127.0.0.1"},
                                           {"MASTER_PORT", std::to_string(port_)}};
    for (const auto& [k, v] : opts.env) set[k] = v;
    for (char** e = environ; e && *e; ++e) {
      const std::string kv(*e);
      if (set.count(kv.substr(0, kv.find('='))) == 0) envs[r].push_back(kv);
    }
    for (const auto& [k, v] : set) envs[r].push_back(k + "=" + v);
  }

  ranks_.resize(world);
  ends_.resize(world);
  for (int r = 0; r < world; ++r) {
    std::vector<char*> envp;
    for (auto& kv : envs[r]) envp.push_back(kv.data());
    envp.push_back(nullptr);
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    const bool piped = ::pipe2(out_pipe, O_CLOEXEC) == 0 && ::pipe2(err_pipe, O_CLOEXEC) == 0;
    const pid_t pid = piped ? ::fork() : -1;
    if (pid == 0) {
      ::dup2(out_pipe[1], 1);  // dup2 clears O_CLOEXEC on 1 and 2
      ::dup2(err_pipe[1], 2);
      ::execve(opts.exe.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    const int err = errno;
    for (int fd : {out_pipe[1], err_pipe[1]})
      if (fd >= 0) ::close(fd);
    if (pid < 0) {
      for (int fd : {out_pipe[0], err_pipe[0]})
        if (fd >= 0) ::close(fd);
      ranks_.resize(r);  // the destructor is not run: kill and reap here
      signal_running(SIGKILL);
      for (auto& rk : ranks_) {
        ::waitpid(rk.pid, nullptr, 0);
        for (int fd : rk.fds) ::close(fd);
      }
      GRADLENS_CHECK(false, "distributed::RankGroup: ", piped ? "fork()" : "pipe()", " failed for rank ", r, ": ",
                     std::strerror(err));
    }
    ranks_[r].pid = pid;
    ranks_[r].fds[0] = out_pipe[0];
    ranks_[r].fds[1] = err_pipe[0];
  }
}

RankGroup::~RankGroup() {
  signal_running(SIGKILL);
  for (size_t r = 0; r < ranks_.size(); ++r) {
    if (ends_[r].running) ::waitpid(ranks_[r].pid, nullptr, 0);
    for (int fd : ranks_[r].fds)
      if (fd >= 0) ::close(fd);
  }
}

bool RankGroup::poll(int wait_ms, const RankOutputFn& on_output) {
  std::vector<pollfd> pfds;
  std::vector<std::pair<int, int>> who;  // (rank, stream index)
  for (size_t r = 0; r < ranks_.size(); ++r)
    for (int s = 0; s < 2; ++s)
      if (ranks_[r].fds[s] >= 0) {
        pfds.push_back({ranks_[r].fds[s], POLLIN, 0});
        who.emplace_back(static_cast<int>(r), s);
      }
  if (!pfds.empty()) ::poll(pfds.data(), pfds.size(), wait_ms);
  else std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  for (size_t i = 0; i < pfds.size(); ++i) {
    if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    auto& rk = ranks_[who[i].first];
    const int s = who[i].second;
    char buf[8192];
    const ssize_t got = ::read(pfds[i].fd, buf, sizeof(buf));
    if (got > 0) {
      if (on_output) on_output(who[i].first, s + 1, std::string_view(buf, static_cast<size_t>(got)));
    } else if (got == 0 || errno != EINTR) {
      ::close(rk.fds[s]);
      rk.fds[s] = -1;
    }
  }
  bool open = false;
  for (size_t r = 0; r < ranks_.size(); ++r) {
    auto& end = ends_[r];
    if (end.running) {
      int st = 0;
      if (::waitpid(ranks_[r].pid, &st, WNOHANG) == ranks_[r].pid) {
        end.running = false;
        end.seconds = now_s() - started_;
        end.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        end.signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
        if (!end.ok() && first_failure_ < 0) first_failure_ = static_cast<int>(r);
      }
    }
    open = open || end.running || ranks_[r].fds[0] >= 0 || ranks_[r].fds[1] >= 0;
  }
  return open;
}

void RankGroup::signal_running(int sig) {
  for (size_t r = 0; r < ranks_.size(); ++r)
    if (ends_[r].running) ::kill(ranks_[r].pid, sig);
}

std::vector<RankEnd> run_ranks(const LaunchOptions& opts, const RankOutputFn& on_output, double limit_s) {
  RankGroup group(opts);
  const double t0 = now_s();
  bool killed = false;
  while (group.poll(20, on_output)) {
    if (limit_s > 0 && !killed && now_s() - t0 > limit_s) {
      group.signal_running(SIGKILL);
      killed = true;
    }
  }
  return group.ends();
}

}  // namespace gradlens::distributed
