// Two (and three) ranks on 127.0.0.1 over c10d's TCPStore and ProcessGroupGloo:
// collective values, rendezvous errors, and a rank that dies mid-run.
#include "gradlens/distributed/context.h"
#include "gradlens/cluster/kmeans.h"

#include <torch/types.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>

#include "distributed/dist_test_util.h"
#include "gradlens/core/npy.h"

namespace gradlens::distributed {
namespace {

using test::dist_dir;
using test::dist_is_worker;
using test::dist_spawn;

// ---- workers (run only inside spawned ranks)

TEST(DistWorker, Collectives) {
  if (!dist_is_worker()) GTEST_SKIP() << "runs inside spawned ranks only";
  Communicator comm{DistOptions{}};
  const int r = comm.rank(), w = comm.world_size();
  auto s = torch::tensor({1.0 + r, 10.0 * (r + 1), -0.5}, torch::kFloat64);
  comm.all_reduce_sum(s);
  core::write_npy(dist_dir() / ("sum" + std::to_string(r) + ".npy"), s);
  auto i = torch::tensor({int64_t(r) + 1}, torch::kInt64);
  comm.all_reduce_sum(i);
  core::write_npy(dist_dir() / ("isum" + std::to_string(r) + ".npy"), i);
  // Rank r sends r + 1 rows of width 2 holding 100 r + row.
  const auto block = (torch::arange(2 * (r + 1), torch::kFloat32).view({r + 1, 2}) + 100.0f * r);
  core::write_npy(dist_dir() / ("allgather" + std::to_string(r) + ".npy"), comm.all_gather_rows(block));
  const auto g = comm.gather_rows(block);
  EXPECT_EQ(g.defined(), r == 0);
  if (r == 0) core::write_npy(dist_dir() / "gather.npy", g);
  // A rank without rows.
  const auto maybe_empty = r == 1 ? torch::empty({0}, torch::kInt64) : torch::full({2}, int64_t(r), torch::kInt64);
  core::write_npy(dist_dir() / ("ragged" + std::to_string(r) + ".npy"), comm.all_gather_rows(maybe_empty));
  auto b = r == 0 ? torch::tensor({3.0f, 4.0f}) : torch::zeros({2});
  comm.broadcast(b, 0);
  core::write_npy(dist_dir() / ("bcast" + std::to_string(r) + ".npy"), b);
  comm.barrier();
  EXPECT_EQ(w, std::atoi(std::getenv("WORLD_SIZE")));
}

// Rank 1 dies (SIGKILL) in the middle of a distributed KMeans (in its progress
// callback after the second iteration); rank 0 must fail within the timeout
// naming rank 1.
TEST(DistWorker, PeerDiesMidRun) {
  if (!dist_is_worker()) GTEST_SKIP() << "runs inside spawned ranks only";
  Communicator comm{DistOptions{}};
  torch::manual_seed(1);
  const auto x = torch::randn({400, 3});
  cluster::KMeansOptions o;
  o.k = 5;
  o.tol = 0;
  o.max_iter = 100000;
  o.init = cluster::KMeansInit::kGiven;
  o.init_centroids = x.slice(0, 0, 5);
  if (comm.rank() == 1)
    o.progress = [](const core::ProgressEvent& ev) {
      if (ev.done == 2) std::raise(SIGKILL);
    };
  const auto t0 = std::chrono::steady_clock::now();
  std::string msg;
  try {
    cluster::kmeans_fit(comm.rank() == 0 ? x : x + 0.5, o, comm);
  } catch (const std::exception& e) {
    msg = e.what();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "rank " << comm.rank() << " error after " << secs << " s: " << msg << std::endl;
  EXPECT_NE(msg.find("lost rank 1"), std::string::npos) << msg;
  EXPECT_LT(secs, 15.0);
}

// ---- tests

TEST(DistCollectives, TwoRanksAllReduceGatherBroadcast) {
  test::TempDir dir;
  const auto ranks = dist_spawn("DistWorker.Collectives", 2, dir.path());
  for (size_t r = 0; r < ranks.size(); ++r) ASSERT_EQ(ranks[r].exit_code, 0) << "rank " << r << ":\n" << ranks[r].output;
  const auto rows = torch::tensor({0.f, 1.f, 100.f, 101.f, 102.f, 103.f}).view({3, 2});
  for (int r = 0; r < 2; ++r) {
    const auto p = [&](const std::string& n) { return dir / (n + std::to_string(r) + ".npy"); };
    EXPECT_TRUE(torch::equal(core::read_npy(p("sum")), torch::tensor({3.0, 30.0, -1.0}, torch::kFloat64)));
    EXPECT_TRUE(torch::equal(core::read_npy(p("isum")), torch::tensor({int64_t(3)}, torch::kInt64)));
    EXPECT_TRUE(torch::equal(core::read_npy(p("allgather")), rows));
    EXPECT_TRUE(torch::equal(core::read_npy(p("ragged")), torch::tensor({int64_t(0), int64_t(0)}, torch::kInt64)));
    EXPECT_TRUE(torch::equal(core::read_npy(p("bcast")), torch::tensor({3.0f, 4.0f})));
  }
  EXPECT_TRUE(torch::equal(core::read_npy(dir / "gather.npy"), rows));
}

TEST(DistCollectives, ThreeRanksGatherInRankOrder) {
  test::TempDir dir;
  const auto ranks = dist_spawn("DistWorker.Collectives", 3, dir.path());
  for (size_t r = 0; r < ranks.size(); ++r) ASSERT_EQ(ranks[r].exit_code, 0) << "rank " << r << ":\n" << ranks[r].output;
  const auto g = core::read_npy(dir / "gather.npy");
  ASSERT_EQ(g.size(0), 6);  // 1 + 2 + 3 rows
  EXPECT_TRUE(torch::equal(g.select(1, 0), torch::tensor({0.f, 100.f, 102.f, 200.f, 202.f, 204.f})));
  EXPECT_TRUE(torch::equal(core::read_npy(dir / "sum2.npy"), torch::tensor({6.0, 60.0, -1.5}, torch::kFloat64)));
  EXPECT_TRUE(torch::equal(core::read_npy(dir / "ragged1.npy"), torch::tensor({0, 0, 2, 2}, torch::kInt64)));
}

TEST(DistFaults, RankKilledMidRunIsNamedWithinTheTimeout) {
  test::TempDir dir;
  const auto ranks = dist_spawn("DistWorker.PeerDiesMidRun", 2, dir.path(), {{"GRADLENS_DIST_TIMEOUT", "10"}}, 60);
  EXPECT_EQ(ranks[1].signal, SIGKILL) << ranks[1].output;
  EXPECT_EQ(ranks[0].exit_code, 0) << ranks[0].output;  // its own assertions passed
  EXPECT_NE(ranks[0].output.find("lost rank 1"), std::string::npos) << ranks[0].output;
  EXPECT_LT(ranks[0].seconds, 30.0);
}

TEST(DistFaults, PortInUseIsAClearError) {
  // Hold a listening socket on a port, then ask rank 0 to host the store there.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  DistOptions o;
  o.use_environment = false;
  o.rank = 0;
  o.world_size = 2;
  o.master_addr = "127.0.0.1";
  o.master_port = port;
  o.timeout = std::chrono::seconds(3);
  const auto t0 = std::chrono::steady_clock::now();
  GRADLENS_EXPECT_THROWS_WITH(Communicator{o}, "MASTER_ADDR:MASTER_PORT = 127.0.0.1:" + std::to_string(port));
  GRADLENS_EXPECT_THROWS_WITH(Communicator{o}, "already in use; choose a free MASTER_PORT");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  ::close(fd);
}

TEST(DistFaults, UnreachableMasterTimesOutNamingIt) {
  DistOptions o;
  o.use_environment = false;
  o.rank = 1;
  o.world_size = 2;
  o.master_addr = "127.0.0.1";
  o.master_port = test::dist_free_port();  // nobody listens there
  o.timeout = std::chrono::seconds(2);
  const auto t0 = std::chrono::steady_clock::now();
  GRADLENS_EXPECT_THROWS_WITH(Communicator{o}, "could not rendezvous at MASTER_ADDR:MASTER_PORT = 127.0.0.1:" +
                                                   std::to_string(o.master_port) + " within 2 s");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(secs, 0.5);  // c10d counts its 2 s loosely (measured ~1 s)
  EXPECT_LT(secs, 10.0);
}

}  // namespace
}  // namespace gradlens::distributed
