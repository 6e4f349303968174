// --device cuda end to end (CTest label gpu). Every test skips, saying why,
// on a build or machine without CUDA; scripts/gpu-check.sh runs them on a GPU.
// A model trained on the CPU is extracted, evaluated and analysed on the GPU,
// and the results are compared with the CPU's.
#include "apps/cli_run.h"

#include <torch/cuda.h>
#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "support/support.h"

namespace gradlens::cli {
namespace {

// Skips the test unless `n` CUDA devices and Fashion-MNIST are there.
#define GRADLENS_NEED_GPUS(n)                                                                            \
  do {                                                                                                   \
    if (!torch::cuda::is_available())                                                                    \
      GTEST_SKIP() << "no CUDA: this LibTorch was built without CUDA or no GPU is visible";              \
    if (static_cast<int>(torch::cuda::device_count()) < (n))                                             \
      GTEST_SKIP() << "needs " << (n) << " CUDA devices, " << torch::cuda::device_count() << " visible"; \
    if (test::fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";     \
  } while (0)

// A width-8 ResNet18 trained on the CPU for one epoch on 200 images.
std::string gpu_train_on_cpu(const test::fs::path& dir) {
  auto t = cli_run({"--quiet", "train", "--width", "8", "--epochs", "1", "--train-per-class", "20",
                    "--test-per-class", "5", "--batch-size", "50", "--out", (dir / "m").string()});
  EXPECT_EQ(t.code, 0) << t.err;
  return (dir / "m" / "model.ckpt").string();
}

TEST(DeviceGpu, ExtractOnCudaEqualsCpu) {
  GRADLENS_NEED_GPUS(1);
  test::TempDir dir;
  const std::string model = gpu_train_on_cpu(dir.path());
  for (const std::string device : {"cpu", "cuda"}) {
    auto e = cli_run({"--quiet", "--device", device, "extract", "--model", model, "--per-class", "8",
                      "--out", (dir / device).string()});
    ASSERT_EQ(e.code, 0) << device << ": " << e.err;
  }
  int compared = 0;
  for (const auto& f : test::fs::directory_iterator(dir / "cpu")) {
    if (f.path().extension() != ".npy") continue;
    const auto name = f.path().filename().string();
    SCOPED_TRACE(name);
    const auto cpu = core::read_npy(f.path()).to(torch::kFloat64);
    const auto gpu = core::read_npy(dir / "cuda" / name).to(torch::kFloat64);
    ASSERT_EQ(cpu.sizes(), gpu.sizes());
    if (name == "labels.npy" || name == "preds.npy") {
      EXPECT_TRUE(torch::equal(cpu, gpu));
    } else {
      // cuDNN and the CPU sum in different orders (TF32 is off by default).
      EXPECT_LT(test::rel_to_reference(gpu, cpu), 1e-4);
    }
    ++compared;
  }
  EXPECT_GE(compared, 8);
}

TEST(DeviceGpu, TrainEvaluateAndHessianOnCuda) {
  GRADLENS_NEED_GPUS(1);
  test::TempDir dir;
  const std::string model = gpu_train_on_cpu(dir.path());
  // Training on the GPU: the same recipe reaches the CPU's accuracy within
  // a few images of the 50-image test split (kernels differ, so not bits).
  auto t = cli_run({"--quiet", "--device", "cuda", "train", "--width", "8", "--epochs", "1", "--train-per-class",
                    "20", "--test-per-class", "5", "--batch-size", "50", "--out", (dir / "gm").string()});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_TRUE(test::fs::exists(dir / "gm" / "model.ckpt"));

  double accuracy[2] = {0, 0};
  double top_eigenvalue[2] = {0, 0};
  int i = 0;
  for (const std::string device : {"cpu", "cuda"}) {
    auto ev = cli_run({"--quiet", "--device", device, "evaluate", "--models", model, "--per-class", "10",
                       "--no-cache", "--out", (dir / ("report-" + device)).string()});
    ASSERT_EQ(ev.code, 0) << device << ": " << ev.err;
    const auto report = nlohmann::json::parse(core::read_file(dir / ("report-" + device) / "report.json"));
    EXPECT_EQ(report["protocol"]["device"], device);
    accuracy[i] = report["models"][0]["accuracy"].get<double>();
    auto h = cli_run({"--quiet", "--device", device, "hessian", "--model", model, "--params", "fc", "--per-class",
                      "4", "--top-k", "1", "--trace-probes", "10", "--out", (dir / ("h-" + device)).string()});
    ASSERT_EQ(h.code, 0) << device << ": " << h.err;
    const auto hj = nlohmann::json::parse(core::read_file(dir / ("h-" + device) / "hessian.json"));
    top_eigenvalue[i] = hj["groups"][0]["eigenvalues"][0].get<double>();
    ++i;
  }
  EXPECT_NEAR(accuracy[1], accuracy[0], 1e-12);
  EXPECT_NEAR(top_eigenvalue[1], top_eigenvalue[0], 1e-3 * std::abs(top_eigenvalue[0]));
}

TEST(DeviceGpu, LaunchOnTwoGpusUsesNcclAndEqualsOneProcess) {
  GRADLENS_NEED_GPUS(2);
  test::TempDir dir;
  const std::string model = gpu_train_on_cpu(dir.path());
  const std::string g = test::binary_path("gradlens").string();
  const std::string args = " --quiet --device cuda extract --model " + model + " --per-class 5 --batch-size 8 --out ";
  const auto one = test::run_command(g + args + (dir / "one").string());
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = test::run_command("GRADLENS_DIST_BACKEND=nccl " + g + " launch -n 2 --timeout 120 --" + args +
                                     (dir / "two").string());
  ASSERT_EQ(two.exit_code, 0) << two.output;
  for (const auto& f : test::fs::directory_iterator(dir / "one")) {
    if (f.path().extension() != ".npy") continue;
    SCOPED_TRACE(f.path().filename().string());
    const auto a = core::read_npy(f.path()).to(torch::kFloat64);
    const auto b = core::read_npy(dir / "two" / f.path().filename()).to(torch::kFloat64);
    ASSERT_EQ(a.sizes(), b.sizes());
    EXPECT_LT(test::max_abs_diff(a, b), 1e-5 * (1 + a.abs().max().item<double>()));
  }
}

}  // namespace
}  // namespace gradlens::cli
