// `gradlens launch -n 2 -- extract ...` equals a single-process extract file
// by file; a rank killed mid-run makes the run fail naming it, with no
// complete run directory. Runs the built gradlens binary.
#include <torch/types.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "distributed/dist_test_util.h"

namespace gradlens::distributed {
namespace {

std::string dex_slurp(const test::fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A width-4 ResNet18 trained for one epoch on 100 Fashion-MNIST images.
std::string dex_train(const test::fs::path& dir) {
  const std::string g = test::binary_path("gradlens").string();
  const auto t = test::run_command(g + " --threads 1 --quiet train --width 4 --epochs 1 --train-per-class 10 "
                                       "--test-per-class 5 --batch-size 50 --out " + (dir / "m").string());
  EXPECT_EQ(t.exit_code, 0) << t.output;
  return (dir / "m" / "model.ckpt").string();
}

TEST(DistExtract, LaunchTwoRanksEqualsOneProcessFileByFile) {
  if (test::fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  if (!test::fs::exists(test::binary_path("gradlens"))) GTEST_SKIP() << "build the gradlens target first";
  test::TempDir dir;
  const std::string g = test::binary_path("gradlens").string();
  const std::string model = dex_train(dir.path());
  // 50 images in batches of 8: rank 0 gets 4 batches (32 rows), rank 1 3 (18).
  const std::string args = " --threads 1 --quiet extract --model " + model + " --per-class 5 --batch-size 8 --out ";
  const auto one = test::run_command(g + args + (dir / "one").string());
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = test::run_command(g + " launch -n 2 --timeout 60 --" + args + (dir / "two").string());
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("[rank 1] extracted 18 image(s)"), std::string::npos) << two.output;
  EXPECT_NE(two.output.find("[rank 0] 50 images, 7 batches"), std::string::npos) << two.output;
  int files = 0;
  for (const auto& e : test::fs::directory_iterator(dir / "one")) {
    const auto name = e.path().filename().string();
    SCOPED_TRACE(name);
    ASSERT_TRUE(test::fs::exists(dir / "two" / name));
    if (name == "manifest.json") {
      auto a = nlohmann::json::parse(dex_slurp(e.path()));
      auto b = nlohmann::json::parse(dex_slurp(dir / "two" / name));
      a.erase("seconds");
      b.erase("seconds");
      EXPECT_EQ(a, b);
    } else {
      EXPECT_TRUE(dex_slurp(e.path()) == dex_slurp(dir / "two" / name)) << "bytes differ";
    }
    ++files;
  }
  EXPECT_GE(files, 10);  // 7 representations + labels + preds + manifest
}

TEST(DistExtract, RankKilledMidRunFailsNamingItWithoutACompleteRun) {
  if (test::fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  if (!test::fs::exists(test::binary_path("gradlens"))) GTEST_SKIP() << "build the gradlens target first";
  test::TempDir dir;
  const std::string g = test::binary_path("gradlens").string();
  const std::string model = dex_train(dir.path());
  const auto log = (dir / "launch.log").string();
  // Start the launch, wait until both ranks have created their temporary
  // directories (extraction is starting) plus 0.2 s, SIGKILL rank 1 (the
  // launcher's second child), and wait for the launcher. 600 images per class
  // keep the ranks busy for many seconds, so the kill lands mid-run even on
  // an idle machine.
  const std::string script =
      g + " launch -n 2 --timeout 10 -- --threads 1 extract --model " + model +
      " --per-class 600 --batch-size 8 --out " + (dir / "killed").string() + " > " + log + " 2>&1 & L=$!; " +
      "for i in $(seq 1 900); do [ $(ls -a " + dir.path().string() + " | grep -c '^.killed.partial-') -ge 2 ] && break; " +
      "sleep 0.1; done; sleep 0.2; " +
      "R1=$(cut -d' ' -f2 /proc/$L/task/$L/children); kill -9 $R1; START=$(date +%s); wait $L; RC=$?; " +
      "echo \"launch-rc=$RC after $(( $(date +%s) - START )) s\"";
  const auto r = test::run_command("bash -c \"" + [&] {
    std::string s;
    for (char c : script) {
      if (c == '"' || c == '$' || c == '\\' || c == '`') s += '\\';
      s += c;
    }
    return s;
  }() + "\"");
  const std::string out = dex_slurp(log);
  EXPECT_NE(r.output.find("launch-rc=1 "), std::string::npos) << r.output << out;
  EXPECT_NE(out.find("gradlens launch: rank 1 killed by signal 9"), std::string::npos) << out;
  EXPECT_NE(out.find("lost rank 1"), std::string::npos) << out;          // rank 0's own error
  EXPECT_NE(out.find("rank 0 exited with 1"), std::string::npos) << out;  // and it failed
  EXPECT_FALSE(test::fs::exists(dir / "killed"));
  for (const auto& e : test::fs::directory_iterator(dir.path()))
    EXPECT_FALSE(test::fs::exists(e.path() / "manifest.json") && e.path().filename().string().find("killed") !=
                                                                        std::string::npos)
        << e.path();
}

}  // namespace
}  // namespace gradlens::distributed
