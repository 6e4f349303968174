#include "gradlens/data/mnist.h"

#include <torch/types.h>

#include <chrono>
#include <cstdlib>

#include "data/data_test_util.h"
#include "gradlens/data/idx.h"
#include "support/support.h"

namespace gradlens::data {
namespace {

using testutil::gzip;
using testutil::idx_bytes;
using testutil::ramp;
using testutil::write_bytes;

/// Writes a tiny Fashion-MNIST-like split: n images of 28x28, labels i % 10.
void write_split(const test::fs::path& dir, const std::string& prefix, uint32_t n_images,
                 uint32_t n_labels, bool gz) {
  std::vector<uint8_t> labels(n_labels);
  for (uint32_t i = 0; i < n_labels; ++i) labels[i] = static_cast<uint8_t>(i % 10);
  std::string img = idx_bytes(kIdxImagesMagic, {n_images, 28, 28}, ramp(n_images * 784u));
  std::string lab = idx_bytes(kIdxLabelsMagic, {n_labels}, labels);
  const std::string ext = gz ? ".gz" : "";
  write_bytes(dir / (prefix + "-images-idx3-ubyte" + ext), gz ? gzip(img) : img);
  write_bytes(dir / (prefix + "-labels-idx1-ubyte" + ext), gz ? gzip(lab) : lab);
}

TEST(Mnist, LoadsSyntheticSplitsGzipAndRaw) {
  test::TempDir dir;
  write_split(dir.path(), "train", 12, 12, /*gz=*/true);
  write_split(dir.path(), "t10k", 3, 3, /*gz=*/false);
  const Dataset tr = load_fashion_mnist(dir.path().string(), Split::kTrain);
  EXPECT_EQ(tr.name, "fashion-mnist-train");
  ASSERT_EQ(tr.images.sizes(), (std::vector<int64_t>{12, 1, 28, 28}));
  EXPECT_EQ(tr.images.scalar_type(), torch::kUInt8);
  EXPECT_EQ(tr.labels[11].item<int64_t>(), 1);
  EXPECT_EQ(tr.images[1][0][0][0].item<int>(), 784 % 256);
  EXPECT_TRUE(tr.paths.empty());
  EXPECT_EQ(tr.class_names.size(), 10u);
  EXPECT_EQ(tr.class_names[0], "T-shirt/top");
  EXPECT_EQ(tr.class_names[9], "Ankle boot");
  EXPECT_EQ(tr.mean, std::vector<double>{0.2860});
  EXPECT_EQ(tr.std, std::vector<double>{0.3530});
  EXPECT_NO_THROW(validate(tr));
  const Dataset te = load_fashion_mnist(dir.path().string(), Split::kTest);
  EXPECT_EQ(te.size(), 3);
  EXPECT_EQ(te.name, "fashion-mnist-test");
  const Dataset m = load_mnist(dir.path().string(), Split::kTest);
  EXPECT_EQ(m.class_names[7], "7");
  EXPECT_EQ(m.mean, std::vector<double>{0.1307});
}

TEST(Mnist, AcceptsDottedNames) {
  test::TempDir dir;
  write_bytes(dir / "t10k-images.idx3-ubyte", idx_bytes(kIdxImagesMagic, {1, 28, 28}, ramp(784)));
  write_bytes(dir / "t10k-labels.idx1-ubyte", idx_bytes(kIdxLabelsMagic, {1}, {4}));
  EXPECT_EQ(load_fashion_mnist(dir.path().string(), Split::kTest).labels[0].item<int64_t>(), 4);
}

TEST(Mnist, CountMismatchNamesBothFiles) {
  test::TempDir dir;
  write_split(dir.path(), "train", 5, 4, true);
  GRADLENS_EXPECT_THROWS_WITH(load_fashion_mnist(dir.path().string(), Split::kTrain),
                              "train-images-idx3-ubyte.gz holds 5 images but");
  GRADLENS_EXPECT_THROWS_WITH(load_fashion_mnist(dir.path().string(), Split::kTrain),
                              "train-labels-idx1-ubyte.gz holds 4 labels");
}

TEST(Mnist, MissingDirectorySaysHowToGetIt) {
  GRADLENS_EXPECT_THROWS_WITH(load_fashion_mnist("/nonexistent/fmnist", Split::kTrain),
                              "'/nonexistent/fmnist' does not exist");
  GRADLENS_EXPECT_THROWS_WITH(load_fashion_mnist("/nonexistent/fmnist", Split::kTrain),
                              "apt-get install dataset-fashion-mnist");
  GRADLENS_EXPECT_THROWS_WITH(load_fashion_mnist("/nonexistent/fmnist", Split::kTrain), "with --data-dir");
  GRADLENS_EXPECT_THROWS_WITH(load_fashion_mnist("/nonexistent/fmnist", Split::kTrain), "set GRADLENS_DATASETS");
}

TEST(Mnist, DefaultDirectoryFollowsGradlensDatasets) {
  const char* saved = std::getenv("GRADLENS_DATASETS");
  const std::string keep = saved ? saved : "";
  ::unsetenv("GRADLENS_DATASETS");
  EXPECT_EQ(default_idx_dir("fashion-mnist"), "/usr/share/datasets/fashion-mnist");
  ::setenv("GRADLENS_DATASETS", "/data/copies", 1);
  EXPECT_EQ(default_idx_dir("mnist"), "/data/copies/mnist");
  ::setenv("GRADLENS_DATASETS", "", 1);
  EXPECT_EQ(default_idx_dir("mnist"), "/usr/share/datasets/mnist");
  if (saved) ::setenv("GRADLENS_DATASETS", keep.c_str(), 1);
  else ::unsetenv("GRADLENS_DATASETS");
}

TEST(Mnist, MissingFileListsNamesTried) {
  test::TempDir dir;
  write_split(dir.path(), "train", 2, 2, true);
  GRADLENS_EXPECT_THROWS_WITH(load_fashion_mnist(dir.path().string(), Split::kTest),
                              "no test images file in");
  GRADLENS_EXPECT_THROWS_WITH(load_fashion_mnist(dir.path().string(), Split::kTest),
                              "t10k-images-idx3-ubyte.gz, t10k-images-idx3-ubyte");
}

TEST(Mnist, CorruptFilesAreNamed) {
  test::TempDir dir;
  write_split(dir.path(), "t10k", 2, 2, false);
  // Labels where images should be: wrong magic, naming the file.
  write_bytes(dir / "t10k-images-idx3-ubyte", idx_bytes(kIdxLabelsMagic, {2}, {1, 2}));
  GRADLENS_EXPECT_THROWS_WITH(load_fashion_mnist(dir.path().string(), Split::kTest),
                              "t10k-images-idx3-ubyte: wrong magic number 0x00000801");
  write_split(dir.path(), "t10k", 2, 2, false);
  write_bytes(dir / "t10k-labels-idx1-ubyte", idx_bytes(kIdxLabelsMagic, {2}, {1, 10}));
  GRADLENS_EXPECT_THROWS_WITH(load_fashion_mnist(dir.path().string(), Split::kTest),
                              "label 10 is outside [0, 10)");
}

TEST(Mnist, RealFashionMnistTestSplit) {
  const auto dir = test::fashion_mnist_dir();
  if (dir.empty()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const auto t0 = std::chrono::steady_clock::now();
  const Dataset ds = load_fashion_mnist(dir.string(), Split::kTest);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{10000, 1, 28, 28}));
  // The test split is balanced: 1000 images per class.
  EXPECT_TRUE(torch::equal(class_counts(ds), torch::full({10}, 1000, torch::kInt64)));
  // Known first labels of t10k: Ankle boot, Pullover, Trouser, Trouser, Shirt.
  EXPECT_TRUE(torch::equal(ds.labels.narrow(0, 0, 5), torch::tensor({9, 2, 1, 1, 6}, torch::kInt64)));
  EXPECT_LT(secs, 5.0);
}

TEST(Mnist, FashionMnistMeanStdMatchTrainSet) {
  const auto dir = test::fashion_mnist_dir();
  if (dir.empty()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const Dataset ds = load_fashion_mnist(dir.string(), Split::kTrain);
  ASSERT_EQ(ds.size(), 60000);
  // Exact statistics from a histogram of byte values.
  std::vector<double> hist(256, 0.0);
  const auto flat = ds.images.contiguous();
  const uint8_t* p = flat.data_ptr<uint8_t>();
  for (int64_t i = 0; i < flat.numel(); ++i) hist[p[i]] += 1.0;
  double n = 0, sum = 0, sq = 0;
  for (int v = 0; v < 256; ++v) {
    n += hist[static_cast<size_t>(v)];
    sum += hist[static_cast<size_t>(v)] * (v / 255.0);
    sq += hist[static_cast<size_t>(v)] * (v / 255.0) * (v / 255.0);
  }
  const double mean = sum / n;
  const double var = sq / n - mean * mean;
  EXPECT_NEAR(mean, kFashionMnistMean, 1e-3);
  EXPECT_NEAR(std::sqrt(var), kFashionMnistStd, 1e-3);
}

}  // namespace
}  // namespace gradlens::data
