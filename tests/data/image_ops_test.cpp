#include "gradlens/data/image_ops.h"

#include <torch/types.h>

#include "support/support.h"

namespace gradlens::data {
namespace {

using P = std::pair<int64_t, int64_t>;

TEST(ImageOps, ShorterSideSizeAsTorchvision) {
  // torchvision Resize(32): the shorter side becomes 32, the longer
  // int(32 * long / short) (truncated).
  EXPECT_EQ(shorter_side_size(100, 50, 32), P(64, 32));
  EXPECT_EQ(shorter_side_size(50, 100, 32), P(32, 64));
  EXPECT_EQ(shorter_side_size(30, 47, 16), P(16, 25));  // 25.07
  EXPECT_EQ(shorter_side_size(40, 40, 7), P(7, 7));
  GRADLENS_EXPECT_THROWS_WITH(shorter_side_size(0, 5, 3), "empty");
}

TEST(ImageOps, CenterCropRoundsHalfToEven) {
  // 7 columns, crop 4: (7-4)/2 = 1.5 -> round() = 2; 9 columns, crop 4:
  // 2.5 -> 2 (Python rounds half to even).
  auto img = torch::arange(9, torch::kUInt8).view({1, 9, 1}).expand({5, 9, 1}).contiguous();
  EXPECT_EQ(center_crop(img.narrow(1, 0, 7), 4, 4)[0][0][0].item<int>(), 2);
  EXPECT_EQ(center_crop(img, 4, 4)[0][0][0].item<int>(), 2);
  EXPECT_EQ(center_crop(img, 5, 5)[0][0][0].item<int>(), 2);
  EXPECT_EQ(center_crop(img, 5, 3)[0][0][0].item<int>(), 3);
  GRADLENS_EXPECT_THROWS_WITH(center_crop(img, 6, 6), "cannot crop 6x6 out of a 5x9 image");
}

TEST(ImageOps, BilinearKeepsConstantsAndIdentity) {
  const auto c = torch::full({13, 7, 3}, 77, torch::kUInt8);
  EXPECT_TRUE(torch::equal(resize_bilinear(c, 5, 11), torch::full({5, 11, 3}, 77, torch::kUInt8)));
  const auto r = torch::randint(0, 256, {6, 9, 1}, torch::kInt64).to(torch::kUInt8);
  EXPECT_TRUE(torch::equal(resize_bilinear(r, 6, 9), r));
}

TEST(ImageOps, BilinearHandComputed) {
  // Halving a row [0, 100, 200, 255]: scale 2, support 2, taps at centre 1.0
  // cover inputs 0..2 with triangle weights (x - c + 0.5) / 2 -> 0.25, 0.75,
  // 0.75, 0.25 truncated to the image: inputs 0,1,2 weights 0.75, 0.75, 0.25
  // normalised -> (0*0.75 + 100*0.75 + 200*0.25) / 1.75 = 71.43 -> 71.
  // Output 1 (centre 3.0): inputs 1,2,3 weights 0.25, 0.75, 0.75 ->
  // (25 + 150 + 191.25) / 1.75 = 209.29 -> 209.
  auto row = torch::tensor({0, 100, 200, 255}, torch::kUInt8).view({1, 4, 1});
  const auto out = resize_bilinear(row, 1, 2);
  EXPECT_EQ(out[0][0][0].item<int>(), 71);
  EXPECT_EQ(out[0][1][0].item<int>(), 209);
  // Doubling [0, 200]: centres 0.25 and 0.75 -> 0 and 50 for the first
  // two outputs, 150 and 200 for the last two (edge taps renormalised).
  auto two = torch::tensor({0, 200}, torch::kUInt8).view({1, 2, 1});
  const auto up = resize_bilinear(two, 1, 4);
  EXPECT_TRUE(torch::equal(up.flatten(), torch::tensor({0, 50, 150, 200}, torch::kUInt8)));
  // Vertical pass alone matches the horizontal pass on the transpose.
  auto col = row.view({4, 1, 1});
  EXPECT_TRUE(torch::equal(resize_bilinear(col, 2, 1).flatten(), out.flatten()));
}

TEST(ImageOps, NearestPicksSourcePixels) {
  auto row = torch::tensor({10, 20, 30, 40, 50, 60}, torch::kUInt8).view({1, 6, 1});
  // 6 -> 3: sources floor((i + 0.5) * 2) = 1, 3, 5.
  EXPECT_TRUE(torch::equal(resize_nearest(row, 1, 3).flatten(),
                           torch::tensor({20, 40, 60}, torch::kUInt8)));
  // 6 -> 4: floor((i + 0.5) * 1.5) = 0, 2, 3, 5.
  EXPECT_TRUE(torch::equal(resize_nearest(row, 1, 4).flatten(),
                           torch::tensor({10, 30, 40, 60}, torch::kUInt8)));
  // Binary masks stay binary after any resize.
  auto mask = (torch::rand({17, 23, 1}) > 0.5).to(torch::kUInt8) * 255;
  const auto m = resize_center_crop(mask, 8, /*nearest=*/true);
  EXPECT_EQ(m.sizes(), (std::vector<int64_t>{8, 8, 1}));
  EXPECT_TRUE(torch::logical_or(m == 0, m == 255).all().item<bool>());
}

TEST(ImageOps, ResizeCenterCropShape) {
  const auto img = torch::zeros({30, 47, 3}, torch::kUInt8);
  EXPECT_EQ(resize_center_crop(img, 16).sizes(), (std::vector<int64_t>{16, 16, 3}));
}

TEST(ImageOps, GrayAsPil) {
  auto rgb = torch::tensor({255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 200, 200, 200},
                           torch::kUInt8)
                 .view({1, 5, 3});
  // PIL: (19595 R + 38470 G + 7471 B + 32768) >> 16.
  const auto g = rgb_to_gray(rgb).flatten();
  EXPECT_TRUE(torch::equal(g, torch::tensor({76, 150, 29, 18, 200}, torch::kUInt8)));
  const auto one = torch::ones({2, 2, 1}, torch::kUInt8);
  EXPECT_TRUE(torch::equal(rgb_to_gray(one), one));
}

}  // namespace
}  // namespace gradlens::data
