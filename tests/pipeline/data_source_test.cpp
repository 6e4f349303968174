#include "gradlens/pipeline/data_source.h"

#include <torch/types.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>

#include "data/data_test_util.h"
#include "gradlens/data/idx.h"
#include "support/support.h"

namespace gradlens::pipeline {
namespace {

using data::testutil::idx_bytes;
using data::testutil::ramp;
using data::testutil::solid;
using data::testutil::write_bytes;
using data::testutil::write_png;

void expect_same_dataset(const data::Dataset& a, const data::Dataset& b) {
  ASSERT_EQ(a.images.sizes(), b.images.sizes());
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
  EXPECT_EQ(a.class_names, b.class_names);
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.std, b.std);
  EXPECT_EQ(a.paths, b.paths);
}

// n images of 28x28 whose pixels start at `start`, labels 0, 1, ..., 9, 0, ...
void write_idx_split(const std::filesystem::path& dir, const std::string& prefix, uint32_t n, uint8_t start) {
  std::vector<uint8_t> labels(n);
  for (uint32_t i = 0; i < n; ++i) labels[i] = static_cast<uint8_t>(i % 10);
  write_bytes(dir / (prefix + "-images-idx3-ubyte"), idx_bytes(data::kIdxImagesMagic, {n, 28, 28}, ramp(n * 784u, start)));
  write_bytes(dir / (prefix + "-labels-idx1-ubyte"), idx_bytes(data::kIdxLabelsMagic, {n}, labels));
}

TEST(LoadSplit, IdxSplitsEqualThoseOfLoadSplitsWithTheirPerClassLimits) {
  test::TempDir tmp;
  write_idx_split(tmp.path(), "train", 30, 0);
  write_idx_split(tmp.path(), "t10k", 20, 100);
  DataConfig cfg;
  cfg.idx_dir = tmp.path().string();
  cfg.train_per_class = 2;
  cfg.test_per_class = 1;
  for (const std::string subset : {"first", "random"}) {
    cfg.subset = data::parse_subset_mode(subset);
    const Splits both = load_splits(cfg, 7);
    ASSERT_EQ(both.train.size(), 20);
    ASSERT_EQ(both.test.size(), 10);
    expect_same_dataset(load_split(cfg, 7, /*train=*/true), both.train);
    expect_same_dataset(load_split(cfg, 7, /*train=*/false), both.test);
  }
}

TEST(LoadSplit, IdxTestSplitDoesNotReadTheTrainingFiles) {
  test::TempDir tmp;
  write_idx_split(tmp.path(), "t10k", 4, 0);
  // A training image file with a wrong magic number.
  write_bytes(tmp / "train-images-idx3-ubyte", idx_bytes(0x0801, {4, 28, 28}, ramp(4 * 784u)));
  write_idx_split(tmp.path() / "unused", "train", 4, 0);
  std::filesystem::copy_file(tmp.path() / "unused" / "train-labels-idx1-ubyte", tmp / "train-labels-idx1-ubyte");
  DataConfig cfg;
  cfg.idx_dir = tmp.path().string();
  const data::Dataset test = load_split(cfg, 0, /*train=*/false);
  EXPECT_EQ(test.size(), 4);
  EXPECT_EQ(test.labels[3].item<int64_t>(), 3);
  EXPECT_THROW(load_splits(cfg, 0), c10::Error);
  EXPECT_THROW(load_split(cfg, 0, /*train=*/true), c10::Error);
}

TEST(LoadSplit, ImageFolderSplitsAreThoseOfLoadSplitsWithTrainingStatistics) {
  test::TempDir tmp;
  for (int i = 0; i < 5; ++i) {
    write_png(tmp / "cat" / (std::to_string(i) + ".png"), solid(6, 6, 3, 10 * i));
    write_png(tmp / "dog" / (std::to_string(i) + ".png"), solid(6, 6, 3, 200 - 10 * i));
  }
  DataConfig cfg;
  cfg.data = tmp.path().string();
  cfg.image_size = 6;
  cfg.test_fraction = 0.4;
  const Splits both = load_splits(cfg, 3);
  ASSERT_EQ(both.test.size(), 4);
  const data::Dataset test = load_split(cfg, 3, /*train=*/false);
  expect_same_dataset(test, both.test);
  expect_same_dataset(load_split(cfg, 3, /*train=*/true), both.train);
  // The test split carries the training split's statistics.
  EXPECT_EQ(test.mean, both.train.mean);
  const auto x = both.train.images.to(torch::kFloat64) / 255.0;
  EXPECT_NEAR(test.mean[0], x.select(1, 0).mean().item<double>(), 1e-12);
}

// The mode is typed: a bad name is refused where it is parsed, from the
// command line or from a training record's data flags.
TEST(LoadSplit, BadSubsetModeIsNamed) {
  try {
    data::parse_subset_mode("sorted");
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("--subset"), std::string::npos);
  }
  auto j = nlohmann::json::parse(data_flags_json(DataConfig{}));
  j["subset"] = "sorted";
  GRADLENS_EXPECT_THROWS_WITH(data_flags_from_json(j.dump(), "record.json"), "record.json 'sorted' is not a subset mode");
}

// The ranges of the CLI's data flags hold for callers that fill DataConfig
// themselves (the Python module): each bad value is a UsageError naming its flag.
TEST(LoadSplit, OutOfRangeValuesAreUsageErrorsNamingTheFlag) {
  test::TempDir tmp;
  write_idx_split(tmp.path(), "t10k", 3, 0);
  const std::vector<std::pair<std::string, std::function<void(DataConfig&)>>> cases = {
      {"--image-size", [](DataConfig& c) { c.image_size = 5000; }},
      {"--image-size", [](DataConfig& c) { c.image_size = -1; }},
      {"--resize", [](DataConfig& c) { c.resize = -3; }},
      {"--channels", [](DataConfig& c) { c.channels = 2; }},
      {"--test-fraction", [](DataConfig& c) { c.test_fraction = 0.95; }},
      {"--train-per-class", [](DataConfig& c) { c.train_per_class = -1; }},
      {"--test-per-class", [](DataConfig& c) { c.test_per_class = -2; }},
  };
  for (const auto& [flag, set] : cases) {
    DataConfig cfg;
    cfg.idx_dir = tmp.path().string();
    set(cfg);
    for (const bool split : {true, false}) {
      try {
        if (split) load_split(cfg, 0, false);
        else load_splits(cfg, 0);
        ADD_FAILURE() << flag << ": expected an error";
      } catch (const UsageError& e) {
        EXPECT_EQ(std::string(e.what_without_backtrace()).rfind(flag + " ", 0), 0u) << e.what_without_backtrace();
      }
    }
  }
}

}  // namespace
}  // namespace gradlens::pipeline
