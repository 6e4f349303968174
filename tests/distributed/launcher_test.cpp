#include "gradlens/distributed/launcher.h"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace gradlens::distributed {
namespace {

// Ranks of /bin/sh running `script`; returns each rank's stdout and stderr.
struct ShRun {
  std::vector<RankEnd> ends;
  std::vector<std::string> out, err;
};

ShRun run_sh(const std::string& script, int world, std::map<std::string, std::string> env = {}, double limit_s = 0,
             int port = 0) {
  LaunchOptions o;
  o.exe = "/bin/sh";
  o.args = {"-c", script};
  o.world_size = world;
  o.env = std::move(env);
  o.port = port;
  ShRun r;
  r.out.resize(world);
  r.err.resize(world);
  r.ends = run_ranks(
      o, [&](int rank, int stream, std::string_view b) { (stream == 1 ? r.out : r.err)[rank].append(b); }, limit_s);
  return r;
}

TEST(Launcher, EachRankGetsTorchrunsEnvironmentAndItsOwnStreams) {
  ::setenv("RANK", "99", 1);  // inherited values are replaced
  const auto r = run_sh("echo \"$RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $MASTER_ADDR $MASTER_PORT $EXTRA\"; "
                        "echo \"err $RANK\" >&2",
                        3, {{"EXTRA", "x y"}}, 0, 29500);
  ::unsetenv("RANK");
  ASSERT_EQ(r.ends.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    const std::string rk = std::to_string(k);
    EXPECT_EQ(r.out[k], rk + " " + rk + " 3 3 127.0.0.1 29500 x y\n");
    EXPECT_EQ(r.err[k], "err " + rk + "\n");
    EXPECT_TRUE(r.ends[k].ok());
    EXPECT_EQ(r.ends[k].describe(), "exited with 0");
  }
}

TEST(Launcher, ExitCodesSignalsAndTheFirstFailure) {
  LaunchOptions o;
  o.exe = "/bin/sh";
  // rank 0 fails at once, rank 1 later, rank 2 succeeds.
  o.args = {"-c", "if [ $RANK = 0 ]; then exit 3; elif [ $RANK = 1 ]; then sleep 0.3; kill -9 $$; fi"};
  o.world_size = 3;
  RankGroup g(o);
  while (g.poll(20, {})) {
  }
  EXPECT_EQ(g.first_failure(), 0);
  EXPECT_EQ(g.ends()[0].exit_code, 3);
  EXPECT_EQ(g.ends()[0].describe(), "exited with 3");
  EXPECT_EQ(g.ends()[1].exit_code, -1);
  EXPECT_EQ(g.ends()[1].signal, SIGKILL);
  EXPECT_EQ(g.ends()[1].describe().rfind("killed by signal 9 (", 0), 0u);
  EXPECT_TRUE(g.ends()[2].ok());
  EXPECT_GE(g.ends()[1].seconds, 0.25);
  EXPECT_GT(g.port(), 0);
}

TEST(Launcher, LimitKillsRanksStillRunning) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run_sh("[ $RANK = 0 ] || exec sleep 60", 2, {}, 0.5);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(r.ends[0].ok());
  EXPECT_EQ(r.ends[1].signal, SIGKILL);
  EXPECT_LT(s, 30.0);
}

TEST(Launcher, AMissingProgramEndsItsRankWith127) {
  LaunchOptions o;
  o.exe = "/nonexistent/gradlens-launcher-test";
  o.world_size = 2;
  const auto ends = run_ranks(o, {});
  for (const auto& e : ends) EXPECT_EQ(e.exit_code, 127);
}

TEST(Launcher, DestructorKillsAndReapsRunningRanks) {
  pid_t pid = -1;
  {
    LaunchOptions o;
    o.exe = "/bin/sh";
    o.args = {"-c", "echo $$; exec sleep 60"};
    RankGroup g(o);
    std::string out;
    while (out.find('\n') == std::string::npos && g.poll(20, [&](int, int, std::string_view b) { out.append(b); })) {
    }
    pid = std::stoi(out);
    EXPECT_EQ(::kill(pid, 0), 0);  // running
  }
  EXPECT_NE(::kill(pid, 0), 0);  // killed and reaped: no such process
}

TEST(Launcher, BadOptionsAreRefused) {
  LaunchOptions o;
  o.exe = "/bin/true";
  o.world_size = 0;
  EXPECT_THROW(RankGroup{o}, c10::Error);
  o.world_size = 1;
  o.exe.clear();
  EXPECT_THROW(RankGroup{o}, c10::Error);
}

}  // namespace
}  // namespace gradlens::distributed
