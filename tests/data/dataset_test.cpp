#include "gradlens/data/dataset.h"

#include <torch/types.h>

#include "support/support.h"

namespace gradlens::data {
namespace {

Dataset tiny(int64_t n = 5) {
  Dataset ds;
  ds.images = torch::arange(n * 2 * 2 * 2, torch::kInt64).remainder(256).to(torch::kUInt8).view({n, 2, 2, 2});
  ds.images = ds.images.narrow(1, 0, 1).contiguous();  // [n, 1, 2, 2]
  ds.labels = torch::arange(n, torch::kInt64).remainder(3);
  ds.class_names = {"a", "b", "c"};
  for (int64_t i = 0; i < n; ++i) ds.paths.push_back("p" + std::to_string(i));
  ds.mean = {0.5};
  ds.std = {0.25};
  ds.name = "tiny";
  return ds;
}

TEST(Dataset, SizeAndChannels) {
  Dataset empty;
  EXPECT_EQ(empty.size(), 0);
  EXPECT_EQ(empty.channels(), 0);
  const Dataset ds = tiny();
  EXPECT_EQ(ds.size(), 5);
  EXPECT_EQ(ds.channels(), 1);
  EXPECT_EQ(ds.num_classes(), 3);
  EXPECT_FALSE(ds.has_masks());
  EXPECT_NO_THROW(validate(ds));
}

TEST(Dataset, ToFloatNormalisesPerChannel) {
  // Pixel values 0, 51, 255 in channel 0 and 255 in channel 1.
  auto x = torch::zeros({1, 2, 1, 3}, torch::kUInt8);
  x[0][0][0][0] = 0;
  x[0][0][0][1] = 51;
  x[0][0][0][2] = 255;
  x[0][1].fill_(255);
  const auto y = to_float(x, {0.2, 0.5}, {0.5, 0.25});
  EXPECT_EQ(y.scalar_type(), torch::kFloat32);
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_NEAR(y[0][0][0][0].item<float>(), (0.0 - 0.2) / 0.5, 1e-6);
  EXPECT_NEAR(y[0][0][0][1].item<float>(), (0.2 - 0.2) / 0.5, 1e-6);
  EXPECT_NEAR(y[0][0][0][2].item<float>(), (1.0 - 0.2) / 0.5, 1e-6);
  EXPECT_NEAR(y[0][1][0][0].item<float>(), (1.0 - 0.5) / 0.25, 1e-6);
  // A single-image [C, H, W] input and a broadcast single mean/std.
  const auto z = to_float(x[0], {0.2}, {0.5});
  EXPECT_EQ(z.sizes(), x[0].sizes());
  EXPECT_NEAR(z[1][0][0].item<float>(), (1.0 - 0.2) / 0.5, 1e-6);
  // Raw pixels (--input-range 0-255): (x - mean) / std in byte units.
  const auto r = to_float(x, {100.0, 0.0}, {50.0, 1.0}, /*pixel_scale=*/1.0);
  EXPECT_NEAR(r[0][0][0][1].item<float>(), (51.0 - 100.0) / 50.0, 1e-5);
  EXPECT_NEAR(r[0][1][0][0].item<float>(), 255.0, 1e-4);
  GRADLENS_EXPECT_THROWS_WITH(to_float(x, {0.0}, {1.0}, 0.0), "pixel scale");
}

TEST(Dataset, ToFloatRejectsBadInput) {
  const auto x = torch::zeros({1, 2, 2, 2}, torch::kUInt8);
  GRADLENS_EXPECT_THROWS_WITH(to_float(x.to(torch::kFloat32), {0.5}, {0.5}), "uint8");
  GRADLENS_EXPECT_THROWS_WITH(to_float(x, {0.5, 0.5, 0.5}, {1, 1, 1}), "2 channels");
  GRADLENS_EXPECT_THROWS_WITH(to_float(x, {0.5, 0.5}, {1, 0}), "std must be finite and > 0");
  GRADLENS_EXPECT_THROWS_WITH(to_float(x, {0.5, NAN}, {1, 1}), "channel 1");
  GRADLENS_EXPECT_THROWS_WITH(to_float(x.view({8}), {0.5}, {1}), "[B, C, H, W]");
}

TEST(Dataset, SelectKeepsEverythingAligned) {
  Dataset ds = tiny();
  ds.masks = torch::arange(5, torch::kUInt8).view({5, 1, 1, 1}).expand({5, 1, 2, 2}).contiguous();
  const Dataset s = select(ds, torch::tensor({4, 0, 4}, torch::kInt64));
  ASSERT_EQ(s.size(), 3);
  EXPECT_EQ(s.paths, (std::vector<std::string>{"p4", "p0", "p4"}));
  EXPECT_TRUE(torch::equal(s.labels, torch::tensor({1, 0, 1}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(s.images[0], ds.images[4]));
  EXPECT_TRUE(torch::equal(s.images[1], ds.images[0]));
  EXPECT_EQ(s.masks[0][0][1][1].item<int>(), 4);
  EXPECT_EQ(s.masks[1][0][0][0].item<int>(), 0);
  EXPECT_EQ(s.class_names, ds.class_names);
  EXPECT_EQ(s.mean, ds.mean);
  EXPECT_EQ(s.name, "tiny");
  EXPECT_NO_THROW(validate(s));
  // int32 indices work too; the empty selection is valid.
  EXPECT_EQ(select(ds, torch::tensor({1}, torch::kInt32)).paths.front(), "p1");
  EXPECT_EQ(select(ds, torch::empty({0}, torch::kInt64)).size(), 0);
}

TEST(Dataset, SelectRejectsOutOfRange) {
  const Dataset ds = tiny();
  GRADLENS_EXPECT_THROWS_WITH(select(ds, torch::tensor({0, 5}, torch::kInt64)),
                              "indices span [0, 5] but dataset 'tiny' has 5 samples");
  GRADLENS_EXPECT_THROWS_WITH(select(ds, torch::tensor({-1}, torch::kInt64)), "[-1, -1]");
  GRADLENS_EXPECT_THROWS_WITH(select(ds, torch::tensor({0.5})), "1-D integer tensor");
}

TEST(Dataset, ClassCounts) {
  const Dataset ds = tiny(7);  // labels 0 1 2 0 1 2 0
  EXPECT_TRUE(torch::equal(class_counts(ds), torch::tensor({3, 2, 2}, torch::kInt64)));
}

TEST(Dataset, ValidateNamesTheBrokenField) {
  Dataset ds = tiny();
  ds.labels[2] = 3;
  GRADLENS_EXPECT_THROWS_WITH(validate(ds), "labels span [0, 3] but there are 3 class names");
  ds = tiny();
  ds.std = {};
  GRADLENS_EXPECT_THROWS_WITH(validate(ds), "mean/std must have 1 values");
  ds = tiny();
  ds.paths.pop_back();
  GRADLENS_EXPECT_THROWS_WITH(validate(ds), "4 paths for 5 samples");
  ds = tiny();
  ds.masks = torch::zeros({5, 1, 3, 3}, torch::kUInt8);
  GRADLENS_EXPECT_THROWS_WITH(validate(ds), "masks must be uint8 [N, 1, H, W]");
}

}  // namespace
}  // namespace gradlens::data
