// The CLI is tested in-process: run_cli() on argument vectors, no subprocess.
#include "apps/cli_run.h"

#include <torch/types.h>

#include <sstream>

#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "gradlens/models/winograd_kernel.h"
#include "support/support.h"

namespace gradlens::cli {
namespace {

TEST(Cli, VersionAndHelpExitZero) {
  auto v = cli_run({"--version"});
  EXPECT_EQ(v.code, 0);
  EXPECT_NE(v.out.find("gradlens 0.1.0"), std::string::npos) << v.out;
  auto h = cli_run({"--help"});
  EXPECT_EQ(h.code, 0);
  for (const char* cmd : {"models", "train", "make-shapes", "import"})
    EXPECT_NE(h.out.find(cmd), std::string::npos) << cmd;
  auto th = cli_run({"train", "--help"});
  EXPECT_EQ(th.code, 0);
  EXPECT_NE(th.out.find("--time-budget"), std::string::npos);
}

TEST(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(cli_run({}).code, 2);
  EXPECT_EQ(cli_run({"frobnicate"}).code, 2);
  auto r = cli_run({"train", "--epochs", "zero"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--epochs"), std::string::npos) << r.err;
  EXPECT_EQ(cli_run({"--threads", "-1", "models"}).code, 2);
  EXPECT_EQ(cli_run({"--blas-threads", "-1", "models"}).code, 2);
  auto conv = cli_run({"--conv-algorithm", "fft", "models"});
  EXPECT_EQ(conv.code, 2);
  EXPECT_NE(conv.err.find("--conv-algorithm"), std::string::npos) << conv.err;
}

TEST(Cli, RuntimeErrorsExitOneWithAOneLineMessage) {
  auto r = cli_run({"train", "--data", "/nonexistent/dir", "--out", "/tmp"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("/nonexistent/dir"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  auto d = cli_run({"--device", "cuda:7", "models"});
  EXPECT_EQ(d.code, 1);
  EXPECT_NE(d.err.find("--device"), std::string::npos) << d.err;
}

TEST(Cli, UnknownModelAndScheduleAreNamed) {
  test::TempDir dir;
  auto r = cli_run({"train", "--model", "resnet19", "--out", dir.path().string(), "--data",
                dir.path().string()});
  EXPECT_NE(r.code, 0);
  auto s = cli_run({"train", "--schedule", "linear"});
  EXPECT_EQ(s.code, 2);
  EXPECT_NE(s.err.find("--schedule"), std::string::npos) << s.err;
}

TEST(Cli, ModelsListsTorchvisionParameterCounts) {
  auto r = cli_run({"models"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("11689512"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("60192808"), std::string::npos) << r.out;
  auto small = cli_run({"models", "--classes", "10", "--channels", "1", "--stem", "small"});
  ASSERT_EQ(small.code, 0) << small.err;
  // conv1 3x3x1x64 instead of 7x7x3x64, fc 512x10+10 instead of 512x1000+1000.
  EXPECT_NE(small.out.find(std::to_string(11689512 - 9408 + 576 - 513000 + 5130)), std::string::npos)
      << small.out;
}

TEST(Cli, TrainUnwritableOutIsAClearError) {
  auto r = cli_run({"train", "--out", "/proc/gradlens-cannot-write"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;
}

TEST(Cli, TrainsATinyModelEndToEnd) {
  if (test::fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  test::TempDir dir;
  auto r = cli_run({"--threads", "1", "--quiet", "train", "--width", "4", "--epochs", "1",
                "--train-per-class", "20", "--test-per-class", "10", "--batch-size", "50",
                "--out", dir.path().string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("test accuracy:"), std::string::npos) << r.out;
  EXPECT_TRUE(test::fs::exists(dir / "model.ckpt"));
  EXPECT_TRUE(test::fs::exists(dir / "summary.json"));
  // Resuming a finished run trains nothing more and still succeeds.
  auto again = cli_run({"--threads", "1", "--quiet", "train", "--width", "4", "--epochs", "2",
                    "--train-per-class", "20", "--test-per-class", "10", "--batch-size", "50",
                    "--out", dir.path().string(), "--resume"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("trained 2 epoch(s)"), std::string::npos) << again.out;
}

}  // namespace
}  // namespace gradlens::cli

namespace gradlens::cli {
namespace {

TEST(Cli, MakeShapesIsDeterministicAndRefusesBadInput) {
  test::TempDir dir;
  const auto a = (dir / "a").string(), b = (dir / "b").string();
  for (const auto& out : {a, b}) {
    auto r = cli_run({"--seed", "5", "--quiet", "make-shapes", "--classes", "3", "--per-class", "2",
                  "--size", "24", "--out", out});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  int64_t pngs = 0;
  for (const auto& e : test::fs::recursive_directory_iterator(a)) {
    if (e.path().extension() != ".png") continue;
    ++pngs;
    const auto rel = test::fs::relative(e.path(), a);
    EXPECT_EQ(core::read_file(e.path()), core::read_file(test::fs::path(b) / rel)) << rel;
  }
  EXPECT_EQ(pngs, 3 * 2 * 2);  // image + mask per sample
  EXPECT_EQ(cli_run({"make-shapes", "--classes", "9", "--out", (dir / "c").string()}).code, 2);
  auto again = cli_run({"make-shapes", "--classes", "3", "--per-class", "2", "--size", "24", "--out", a});
  EXPECT_EQ(again.code, 1);
}

}  // namespace
}  // namespace gradlens::cli

namespace gradlens::cli {
namespace {

// A width-4 ResNet18 trained for one epoch on 100 images, in `out`.
void train_tiny(const test::fs::path& out, const std::string& width = "4") {
  auto t = cli_run({"--threads", "1", "--quiet", "train", "--width", width, "--epochs", "1",
                "--train-per-class", "10", "--test-per-class", "5", "--batch-size", "50", "--out",
                out.string()});
  ASSERT_EQ(t.code, 0) << t.err;
}

TEST(Cli, ExtractWritesARunDirectoryFromACheckpoint) {
  if (test::fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  test::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(train_tiny(dir / "m"));
  auto e = cli_run({"--threads", "1", "--quiet", "extract", "--model", (dir / "m" / "model.ckpt").string(),
                "--per-class", "3", "--representations", "gradcam-weights,logits", "--out",
                (dir / "run").string()});
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_TRUE(test::fs::exists(dir / "run" / "gradcam-weights.npy"));
  EXPECT_TRUE(test::fs::exists(dir / "run" / "manifest.json"));
  EXPECT_NE(e.out.find("[30, 32]"), std::string::npos) << e.out;  // 30 images, 4*8 channels
  // The audit flags layer-4 Grad-CAM weights of a GAP + linear head.
  EXPECT_NE(e.err.find("head-weight identity"), std::string::npos) << e.err;
  auto missing = cli_run({"extract", "--model", (dir / "none.ckpt").string(), "--out",
                      (dir / "run2").string()});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("none.ckpt"), std::string::npos) << missing.err;
  EXPECT_FALSE(test::fs::exists(dir / "run2"));
}

TEST(Cli, ConvAlgorithmReachesExtraction) {
  // Width 16: channel counts the Winograd kernel takes. extract uses it by
  // default (auto) and not with --conv-algorithm direct: the same logits up
  // to float rounding, not the same bits (on CPUs that run the kernel).
  if (test::fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  test::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(train_tiny(dir / "m", "16"));
  auto extract = [&](const std::string& algorithm, const std::string& name) {
    auto e = cli_run({"--threads", "1", "--quiet", "--conv-algorithm", algorithm, "extract", "--model",
                  (dir / "m" / "model.ckpt").string(), "--per-class", "2", "--representations", "logits",
                  "--out", (dir / name).string()});
    EXPECT_EQ(e.code, 0) << e.err;
    return core::read_npy(dir / name / "logits.npy");
  };
  const auto automatic = extract("auto", "a"), winograd = extract("winograd", "w"), direct = extract("direct", "d");
  ASSERT_EQ(direct.sizes(), at::IntArrayRef({20, 10}));
  EXPECT_TRUE(torch::equal(automatic, winograd));
  // The manifest records which algorithm ran.
  const bool cpu = models::detail::winograd_cpu_supported();
  EXPECT_NE(core::read_file(dir / "w" / "manifest.json").find(cpu ? "\"convolutions\": \"winograd\""
                                                                    : "\"convolutions\": \"libtorch\""),
            std::string::npos);
  EXPECT_NE(core::read_file(dir / "d" / "manifest.json").find("\"convolutions\": \"libtorch\""),
            std::string::npos);
  EXPECT_LT(((winograd - direct).norm() / direct.norm()).item<double>(), 1e-5);
  if (models::detail::winograd_cpu_supported()) {
    EXPECT_FALSE(torch::equal(winograd, direct));
  }
}

}  // namespace
}  // namespace gradlens::cli

namespace gradlens::cli {
namespace {

TEST(Cli, HessianReportsEigenvaluesAndTraceOfTheHead) {
  if (test::fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  test::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(train_tiny(dir / "m"));
  auto h = cli_run({"--threads", "1", "hessian", "--model", (dir / "m" / "model.ckpt").string(),
                "--params", "fc", "--per-class", "4", "--top-k", "2", "--trace-probes", "20",
                "--out", (dir / "h").string()});
  ASSERT_EQ(h.code, 0) << h.err;
  const auto json = core::read_file(dir / "h" / "hessian.json");
  EXPECT_NE(json.find("\"eigenvalues\""), std::string::npos);
  // fc of width 4: 32x10 weights + 10 biases.
  EXPECT_NE(json.find("\"dimension\": 330"), std::string::npos) << json;
  EXPECT_TRUE(test::fs::exists(dir / "h" / "hessian.md"));
  auto bad = cli_run({"hessian", "--model", (dir / "m" / "model.ckpt").string(), "--params", "nope"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--params"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace gradlens::cli
