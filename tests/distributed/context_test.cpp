// The no-environment path: a single process, rank 0 of 1, collectives are
// identities; option resolution and its errors; shard ranges.
#include "gradlens/distributed/context.h"

#include <torch/types.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <thread>
#include <utility>

#include "gradlens/core/torch_compat.h"
#include "gradlens/distributed/launcher.h"
#include "support/support.h"

namespace gradlens::distributed {
namespace {

using Range = std::pair<int64_t, int64_t>;

// Sets environment variables for one test and restores them afterwards.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::map<std::string, std::string>& vars) {
    for (const char* k : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "GRADLENS_DIST_TIMEOUT",
                          "GRADLENS_DIST_BACKEND"}) {
      const char* v = std::getenv(k);
      saved_[k] = v ? std::optional<std::string>(v) : std::nullopt;
      ::unsetenv(k);
    }
    for (const auto& [k, v] : vars) ::setenv(k.c_str(), v.c_str(), 1);
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : saved_) {
      if (v) ::setenv(k.c_str(), v->c_str(), 1);
      else ::unsetenv(k.c_str());
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST(DistContext, WithoutEnvironmentIsRankZeroOfOne) {
  ScopedEnv env({});
  Communicator comm{DistOptions{}};
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.world_size(), 1);
  EXPECT_EQ(comm.local_rank(), 0);
  EXPECT_TRUE(comm.is_root());
  EXPECT_EQ(comm.describe(), "single process");
  EXPECT_EQ(comm.timeout().count(), 300000);
  Communicator plain;
  EXPECT_EQ(plain.world_size(), 1);
}

TEST(DistContext, CollectivesAreIdentitiesInOneProcess) {
  ScopedEnv env({});
  Communicator comm{DistOptions{}};
  auto t = torch::tensor({1.5, -2.0, 3.25}, torch::kFloat64);
  comm.all_reduce_sum(t);
  EXPECT_TRUE(torch::equal(t, torch::tensor({1.5, -2.0, 3.25}, torch::kFloat64)));
  auto b = torch::tensor({7, 8}, torch::kInt64);
  comm.broadcast(b);
  EXPECT_TRUE(torch::equal(b, torch::tensor({7, 8}, torch::kInt64)));
  const auto rows = torch::arange(12, torch::kFloat32).view({4, 3});
  EXPECT_TRUE(torch::equal(comm.all_gather_rows(rows), rows));
  EXPECT_TRUE(torch::equal(comm.gather_rows(rows), rows));
  comm.barrier();
  GRADLENS_EXPECT_THROWS_WITH(comm.broadcast(b, 1), "root 1");
}

TEST(DistContext, WorldSizeOneSetsUpNothing) {
  ScopedEnv env({{"WORLD_SIZE", "1"}, {"RANK", "0"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "1"}});
  Communicator comm{DistOptions{}};
  EXPECT_EQ(comm.world_size(), 1);
  EXPECT_EQ(comm.describe(), "single process");
}

TEST(DistContext, OptionsComeFromTheEnvironment) {
  ScopedEnv env({{"WORLD_SIZE", "4"}, {"RANK", "2"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "10.0.0.1"},
                 {"MASTER_PORT", "29511"}, {"GRADLENS_DIST_TIMEOUT", "12"}});
  const auto o = resolve_options();
  EXPECT_EQ(o.world_size, 4);
  EXPECT_EQ(o.rank, 2);
  EXPECT_EQ(o.local_rank, 0);
  EXPECT_EQ(o.master_addr, "10.0.0.1");
  EXPECT_EQ(o.master_port, 29511);
  EXPECT_EQ(o.timeout.count(), 12000);
  DistOptions explicit_opts;
  explicit_opts.use_environment = false;
  const auto e = resolve_options(explicit_opts);
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.rank, 0);
}

TEST(DistContext, BadEnvironmentIsNamed) {
  {
    ScopedEnv env({{"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}});
    GRADLENS_EXPECT_THROWS_WITH(resolve_options(), "RANK is not");
  }
  {
    ScopedEnv env({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}});
    GRADLENS_EXPECT_THROWS_WITH(resolve_options(), "RANK=2 is outside [0, WORLD_SIZE=2)");
  }
  {
    ScopedEnv env(std::map<std::string, std::string>{{"WORLD_SIZE", "two"}});
    GRADLENS_EXPECT_THROWS_WITH(resolve_options(), "WORLD_SIZE='two' is not an integer");
  }
  {
    ScopedEnv env({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_PORT", "29500"}});
    GRADLENS_EXPECT_THROWS_WITH(resolve_options(), "MASTER_ADDR is not set");
  }
  {
    ScopedEnv env({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "70000"}});
    GRADLENS_EXPECT_THROWS_WITH(resolve_options(), "MASTER_PORT=70000");
  }
}

TEST(DistContext, BackendFollowsTheDeviceUnlessNamed) {
  const std::map<std::string, std::string> two_ranks{
      {"WORLD_SIZE", "2"}, {"RANK", "1"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  {
    ScopedEnv env(two_ranks);
    const auto o = resolve_options();
    EXPECT_EQ(o.backend, Backend::kGloo);
    EXPECT_STREQ(backend_name(o.backend), "gloo");
    EXPECT_TRUE(o.device.is_cpu());
  }
  {
    // A CUDA device picks NCCL and, bare, becomes the local rank's GPU; a
    // LibTorch without NCCL refuses it with the fix.
    ScopedEnv env(two_ranks);
    DistOptions in;
    in.device = c10::Device(c10::kCUDA);
    if (compat::kHasNccl) {
      const auto o = resolve_options(in);
      EXPECT_EQ(o.backend, Backend::kNccl);
      EXPECT_EQ(o.device, c10::Device(c10::kCUDA, 1));
    } else {
      GRADLENS_EXPECT_THROWS_WITH(resolve_options(in), "needs a LibTorch built with CUDA and NCCL");
    }
  }
  {
    auto vars = two_ranks;
    vars["GRADLENS_DIST_BACKEND"] = "gloo";
    ScopedEnv env(vars);
    DistOptions in;
    in.device = c10::Device(c10::kCUDA, 0);
    const auto o = resolve_options(in);
    EXPECT_EQ(o.backend, Backend::kGloo);  // named: Gloo also carries CUDA runs
    EXPECT_EQ(o.device, c10::Device(c10::kCUDA, 0));
  }
  {
    auto vars = two_ranks;
    vars["GRADLENS_DIST_BACKEND"] = "nccl";
    ScopedEnv env(vars);
    const std::string expected = compat::kHasNccl ? "this rank computes on cpu" : "CUDA and NCCL";
    GRADLENS_EXPECT_THROWS_WITH(resolve_options(), expected);
  }
  {
    auto vars = two_ranks;
    vars["GRADLENS_DIST_BACKEND"] = "mpi";
    ScopedEnv env(vars);
    GRADLENS_EXPECT_THROWS_WITH(resolve_options(), "GRADLENS_DIST_BACKEND: unknown distributed backend 'mpi'");
  }
  {
    // One process talks to no one: NCCL is not checked there.
    ScopedEnv env(std::map<std::string, std::string>{{"GRADLENS_DIST_BACKEND", "nccl"}});
    EXPECT_EQ(resolve_options().backend, Backend::kNccl);
    const auto ranks = join_ranks(c10::kCPU);
    EXPECT_EQ(ranks.comm.world_size(), 1);
    EXPECT_TRUE(ranks.device.is_cpu());
  }
  GRADLENS_EXPECT_THROWS_WITH(parse_backend("NCCL", "--x"), "--x: unknown distributed backend 'NCCL'");
  EXPECT_EQ(parse_backend("nccl", "--x"), Backend::kNccl);
}

// Two ranks as two threads of this process: the TCPStore rendezvous (the
// plain store on every LibTorch version) and Gloo's collectives, without
// spawning processes (the dist label does that, with every algorithm).
TEST(DistContext, TwoRanksInThreadsRendezvousAndReduce) {
  ScopedEnv env({});
  const int port = free_loopback_port();
  ASSERT_GT(port, 0);
  std::vector<torch::Tensor> sums(2), gathered(2), rooted(2), broadcasts(2);
  std::vector<std::string> described(2), errors(2);
  auto rank_main = [&](int r) {
    try {
      DistOptions o;
      o.rank = r;
      o.world_size = 2;
      o.master_addr = "127.0.0.1";
      o.master_port = port;
      o.timeout = std::chrono::milliseconds(60000);
      o.use_environment = false;
      Communicator comm(o);
      described[r] = comm.describe();
      auto t = torch::tensor({1.0 + r, 10.0 * r}, torch::kFloat64);
      sums[r] = comm.all_reduce_sum(t).clone();
      // Rank 0 sends 2 rows, rank 1 three.
      const auto rows = torch::arange(3 * (2 + r), torch::kFloat32).view({2 + r, 3}) + 100 * r;
      gathered[r] = comm.all_gather_rows(rows);
      rooted[r] = comm.gather_rows(rows, 1);
      auto b = torch::full({2}, r == 1 ? 7 : 0, torch::kInt64);
      broadcasts[r] = comm.broadcast(b, 1).clone();
      comm.barrier();
    } catch (const std::exception& e) {
      errors[r] = e.what();
    }
  };
  std::thread t0(rank_main, 0), t1(rank_main, 1);
  t0.join();
  t1.join();
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  const auto want_rows = torch::cat({torch::arange(6, torch::kFloat32).view({2, 3}),
                                     torch::arange(9, torch::kFloat32).view({3, 3}) + 100});
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(torch::equal(sums[r], torch::tensor({3.0, 10.0}, torch::kFloat64))) << r;
    EXPECT_TRUE(torch::equal(gathered[r], want_rows)) << r;
    EXPECT_TRUE(torch::equal(broadcasts[r], torch::full({2}, 7, torch::kInt64))) << r;
    EXPECT_EQ(described[r], "rank " + std::to_string(r) + " of 2 (gloo, MASTER_ADDR:MASTER_PORT = 127.0.0.1:" +
                                std::to_string(port) + ")");
  }
  EXPECT_FALSE(rooted[0].defined());
  EXPECT_TRUE(torch::equal(rooted[1], want_rows));
}

TEST(DistContext, ShardRangesAreContiguousAndAligned) {
  // 10 rows in batches of 3 -> groups {0-2, 3-5, 6-8, 9}: rank 0 gets 2 groups.
  EXPECT_EQ(shard_range(10, 0, 2, 3), Range(0, 6));
  EXPECT_EQ(shard_range(10, 1, 2, 3), Range(6, 10));
  EXPECT_EQ(shard_range(7, 0, 3), Range(0, 3));
  EXPECT_EQ(shard_range(7, 1, 3), Range(3, 5));
  EXPECT_EQ(shard_range(7, 2, 3), Range(5, 7));
  EXPECT_EQ(shard_range(1, 1, 2, 64), Range(1, 1));  // an empty shard
  EXPECT_EQ(shard_range(5, 0, 1), Range(0, 5));
}

TEST(Collectives, OneProcessIsTheIdentityAndShardLayoutCoversItsRows) {
  Communicator comm;
  for (core::Collectives* c : {static_cast<core::Collectives*>(&comm), &core::single_process()}) {
    EXPECT_EQ(c->rank(), 0);
    EXPECT_EQ(c->world_size(), 1);
    EXPECT_TRUE(c->is_root());
    auto t = torch::tensor({1.5, -2.0}, torch::kFloat64);
    c->all_reduce_sum(t);
    c->broadcast(t, 0);
    EXPECT_TRUE(torch::equal(t, torch::tensor({1.5, -2.0}, torch::kFloat64)));
    const auto rows = torch::arange(6, torch::kFloat32).view({3, 2});
    EXPECT_TRUE(torch::equal(c->all_gather_rows(rows), rows));
    EXPECT_TRUE(torch::equal(c->gather_rows(rows, 0), rows));
    const auto l = core::shard_layout(*c, rows, "fit");
    EXPECT_EQ(l.n, 3);
    EXPECT_EQ(l.offset, 0);
    EXPECT_EQ(l.d, 2);
    EXPECT_EQ(l.rows, std::vector<int64_t>{3});
    auto bad = rows.clone();
    bad[1][0] = NAN;
    GRADLENS_EXPECT_THROWS_WITH(core::shard_layout(*c, bad, "fit"), "fit: x_local (rank 0)");
  }
  GRADLENS_EXPECT_THROWS_WITH(core::single_process().gather_rows(torch::zeros({1, 1}), 1), "outside [0, 1)");
}

}  // namespace
}  // namespace gradlens::distributed
