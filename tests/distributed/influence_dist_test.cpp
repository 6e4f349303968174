// `gradlens launch -n 2 -- label-errors / attribute` equals the single
// process: the ranks share the training factors block by block.
#include <torch/types.h>

#include <fstream>
#include <sstream>

#include "distributed/dist_test_util.h"

namespace gradlens::distributed {
namespace {

std::string dinf_slurp(const test::fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(DistInfluence, LaunchTwoRanksEqualsOneProcess) {
  if (test::fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  if (!test::fs::exists(test::binary_path("gradlens"))) GTEST_SKIP() << "build the gradlens target first";
  test::TempDir dir;
  const std::string g = test::binary_path("gradlens").string();
  const std::string data = " --train-per-class 12 --test-per-class 6 ";
  const auto t = test::run_command(g + " --threads 1 --quiet train --width 4 --epochs 2 --batch-size 40" + data +
                                   "--noisy-labels 0.1 --record-dynamics --save-every-epoch --out " +
                                   (dir / "run").string());
  ASSERT_EQ(t.exit_code, 0) << t.output;
  // 120 training and 60 test images in batches of 30: each rank computes
  // half of each set in the same batches as the single process (a batch of
  // another size may round differently in the convolutions).
  for (const std::string cmd : {"label-errors --show 0", "attribute --queries all --top-k 5 --show 2"}) {
    SCOPED_TRACE(cmd);
    const std::string args = " --threads 1 --quiet " + cmd + data + "--batch-size 30 --run " + (dir / "run").string();
    const std::string stem = cmd.substr(0, cmd.find(' '));
    const auto one = test::run_command(g + args + " --store " + (dir / (stem + "-store1")).string() + " --out " +
                                       (dir / (stem + "-one")).string());
    ASSERT_EQ(one.exit_code, 0) << one.output;
    const auto two = test::run_command(g + " launch -n 2 --timeout 120 --" + args + " --store " +
                                       (dir / (stem + "-store2")).string() + " --out " +
                                       (dir / (stem + "-two")).string());
    ASSERT_EQ(two.exit_code, 0) << two.output;
    EXPECT_NE(two.output.find("[rank 1] rank 1 of 2: computed its block"), std::string::npos) << two.output;
    for (const std::string f : {"scores.csv", "proponents.csv", "opponents.csv"}) {
      if (!test::fs::exists(dir / (stem + "-one") / f)) continue;
      EXPECT_TRUE(dinf_slurp(dir / (stem + "-one") / f) == dinf_slurp(dir / (stem + "-two") / f)) << f;
    }
    EXPECT_TRUE(dinf_slurp(dir / (stem + "-store1") / "checkpoint-001.delta.npy") ==
                dinf_slurp(dir / (stem + "-store2") / "checkpoint-001.delta.npy"));
  }
}

}  // namespace
}  // namespace gradlens::distributed
