// Data-parallel training: the bucketed gradient all-reduce over 2 ranks
// equals the single-process gradient of the global batch; `gradlens launch
// -n 2 -- train` follows the single-process loss curve and only rank 0 writes.
#include "gradlens/distributed/data_parallel.h"
#include "gradlens/distributed/context.h"

#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "distributed/dist_test_util.h"
#include "gradlens/core/npy.h"

namespace gradlens::distributed {
namespace {

using test::dist_dir;
using test::dist_is_worker;
using test::dist_spawn;

constexpr int64_t kDpRows = 37;  // odd: the ranks' local batches differ (19 and 18 rows)

// A BatchNorm-free MLP (the same weights in every process) and its data.
torch::nn::Sequential dp_test_model() {
  torch::manual_seed(3);
  return torch::nn::Sequential(torch::nn::Linear(7, 16), torch::nn::Tanh(), torch::nn::Linear(16, 3));
}
std::pair<torch::Tensor, torch::Tensor> dp_test_data() {
  torch::manual_seed(4);
  return {torch::randn({kDpRows, 7}), torch::randint(0, 3, {kDpRows}, torch::kInt64)};
}
// The gradients of the mean cross-entropy over rows [b, e), one per parameter.
std::vector<torch::Tensor> dp_test_grads(torch::nn::Sequential& m, int64_t b, int64_t e) {
  const auto [x, y] = dp_test_data();
  m->zero_grad();
  torch::nn::functional::cross_entropy(m->forward(x.slice(0, b, e)), y.slice(0, b, e)).backward();
  std::vector<torch::Tensor> g;
  for (auto& p : m->parameters()) g.push_back(p.grad());
  return g;
}
torch::Tensor dp_flat(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> f;
  for (const auto& t : ts) f.push_back(t.reshape(-1));
  return torch::cat(f);
}

TEST(DistWorker, GradientReduce) {
  if (!dist_is_worker()) GTEST_SKIP() << "runs inside spawned ranks only";
  Communicator comm{DistOptions{}};
  auto m = dp_test_model();
  const auto [b, e] = shard_range(kDpRows, comm.rank(), comm.world_size());
  auto grads = dp_test_grads(m, b, e);
  // Parameter bytes: 448, 64, 192, 12: 256-byte buckets give [448] [64 192] [12].
  const auto st = all_reduce_gradients(comm, grads, double(e - b) / kDpRows, 256);
  // The gradients were reduced in place (they are the parameters' .grad).
  auto params = m->parameters();
  for (size_t i = 0; i < grads.size(); ++i) ASSERT_TRUE(torch::equal(params[i].grad(), grads[i]));
  // Buffers of two dtypes, different on each rank, become rank 0's.
  std::vector<torch::Tensor> bufs{torch::full({3}, 1.5f + comm.rank()), torch::full({2}, 7 + comm.rank(), torch::kInt64),
                                  torch::full({2, 2}, 0.25f * (comm.rank() + 1))};
  broadcast_tensors(comm, bufs, 0);
  const std::string r = std::to_string(comm.rank());
  core::write_npy(dist_dir() / ("grads" + r + ".npy"), dp_flat(grads));
  core::write_npy(dist_dir() / ("stats" + r + ".npy"), torch::tensor({st.buckets, st.bytes}, torch::kInt64));
  core::write_npy(dist_dir() / ("bufs_f" + r + ".npy"), torch::cat({bufs[0], bufs[2].reshape(-1)}));
  core::write_npy(dist_dir() / ("bufs_i" + r + ".npy"), bufs[1]);
}

TEST(DistDataParallel, BucketedAllReduceEqualsGlobalBatchGradient) {
  test::TempDir dir;
  const auto ranks = dist_spawn("DistWorker.GradientReduce", 2, dir.path());
  for (size_t r = 0; r < ranks.size(); ++r) ASSERT_EQ(ranks[r].exit_code, 0) << "rank " << r << ":\n" << ranks[r].output;
  auto m = dp_test_model();
  const auto want = dp_flat(dp_test_grads(m, 0, kDpRows));
  // The local gradients alone are far from it (so the test can fail).
  const auto local0 = dp_flat(dp_test_grads(m, 0, 19));
  EXPECT_GT(test::max_abs_diff(local0, want), 1e-3 * want.abs().max().item<double>());
  for (int r = 0; r < 2; ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    const auto got = core::read_npy(dir / ("grads" + std::to_string(r) + ".npy"));
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LE(test::max_abs_diff(got, want), 1e-6 * want.abs().max().item<double>());
    const auto st = core::read_npy(dir / ("stats" + std::to_string(r) + ".npy"));
    EXPECT_EQ(st[0].item<int64_t>(), 3);  // buckets
    EXPECT_EQ(st[1].item<int64_t>(), 4 * (7 * 16 + 16 + 16 * 3 + 3));  // bytes
    EXPECT_TRUE(torch::equal(core::read_npy(dir / ("bufs_f" + std::to_string(r) + ".npy")),
                             torch::tensor({1.5f, 1.5f, 1.5f, 0.25f, 0.25f, 0.25f, 0.25f})));
    EXPECT_TRUE(torch::equal(core::read_npy(dir / ("bufs_i" + std::to_string(r) + ".npy")),
                             torch::tensor({7, 7}, torch::kInt64)));
  }
}

nlohmann::json dp_read_json(const test::fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::json::parse(ss.str());
}

// 50 steps (25 epochs of 2 batches of 100) of a width-4 ResNet18 on 200
// Fashion-MNIST images, in one process and on 2 ranks (50 rows each).
TEST(DistDataParallel, LaunchTwoRanksFollowsTheSingleProcessLossCurve) {
  if (test::fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  if (!test::fs::exists(test::binary_path("gradlens"))) GTEST_SKIP() << "build the gradlens target first";
  test::TempDir dir;
  const std::string g = test::binary_path("gradlens").string();
  const std::string args =
      " --threads 1 --quiet train --width 4 --epochs 25 --train-per-class 20 --test-per-class 3 --batch-size 100 "
      "--time-budget 0 --optimizer sgd --lr 0.05 --schedule constant --out ";
  const auto one = test::run_command(g + args + (dir / "one").string());
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = test::run_command(g + " launch -n 2 --timeout 120 --" + args + (dir / "two").string());
  ASSERT_EQ(two.exit_code, 0) << two.output;
  // Rank 0 alone writes: its output names the files, rank 1's says it wrote none.
  EXPECT_NE(two.output.find("[rank 0] checkpoint: " + (dir / "two" / "model.ckpt").string()), std::string::npos)
      << two.output;
  EXPECT_NE(two.output.find("[rank 1] rank 1 of 2: rank 0 writes the checkpoint and summary"), std::string::npos)
      << two.output;
  std::vector<std::string> files;
  for (const auto& e : test::fs::directory_iterator(dir / "two")) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"model.ckpt", "summary.json"}));

  const auto s1 = dp_read_json(dir / "one" / "summary.json");
  const auto s2 = dp_read_json(dir / "two" / "summary.json");
  EXPECT_EQ(s1.at("ranks"), 1);
  EXPECT_EQ(s2.at("ranks"), 2);
  const auto l1 = s1.at("step_losses").get<std::vector<double>>();
  const auto l2 = s2.at("step_losses").get<std::vector<double>>();
  ASSERT_EQ(l1.size(), 50u);
  ASSERT_EQ(l2.size(), 50u);
  double max_diff = 0, mean_diff = 0, early_diff = 0, tail1 = 0, tail2 = 0;
  for (size_t i = 0; i < l1.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(l1[i] - l2[i]));
    mean_diff += std::abs(l1[i] - l2[i]) / l1.size();
    if (i < 3) early_diff += std::abs(l1[i] - l2[i]) / 3;
    if (i >= l1.size() - 10) tail1 += l1[i] / 10, tail2 += l2[i] / 10;
  }
  // Tolerances (docs/training.md "Distributed training"). BatchNorm
  // normalises each rank's 50 rows with their own moments instead of the 100
  // rows', so even the first loss (same weights) differs, and SGD amplifies
  // the differences over the steps. Measured (--threads 1, deterministic):
  // first 3 steps mean |diff| 0.0038 (a doubled gradient, i.e. summed instead
  // of averaged, gives 0.019: this bound is the sharp one). Over 50 steps the
  // curves drift apart as far as two single-process runs with different seeds
  // do (mean |diff| 0.07 to 0.14, max up to 0.28 across machines), so no bound
  // on the drift is asserted; what must hold is that both runs learn.
  EXPECT_LE(early_diff, 0.01) << "mean |loss difference| over the first 3 steps";
  // Both runs learnt: the mean of the last 10 losses is well below the first.
  EXPECT_LT(tail1, 0.6 * l1.front());
  EXPECT_LT(tail2, 0.6 * l2.front());
  std::cout << "step loss |1 - 2 ranks|: first 3 steps mean " << early_diff << ", 50 steps mean " << mean_diff
            << ", max " << max_diff << "; last 10 mean " << tail1 << " vs " << tail2 << "\n";
}

}  // namespace
}  // namespace gradlens::distributed
