#include "gradlens/data/augment.h"

#include <torch/types.h>

#include "support/support.h"

namespace gradlens::data {
namespace {

// A 1x1x4x4 image with pixels 1..16.
torch::Tensor img4() { return torch::arange(1, 17, torch::kUInt8).view({1, 1, 4, 4}); }

TEST(Augment, ShiftWithZeroFill) {
  // dy = dx = 0 with padding 1: the crop starts one pixel up-left, so the
  // image moves one pixel down-right with a zero first row and column.
  const auto out = apply_augment(img4(), {{0, 0, false}}, 1);
  const auto expect = torch::tensor({0, 0, 0, 0,  //
                                     0, 1, 2, 3,  //
                                     0, 5, 6, 7,  //
                                     0, 9, 10, 11},
                                    torch::kUInt8)
                          .view({1, 1, 4, 4});
  EXPECT_TRUE(torch::equal(out, expect));
  // (p, p) is the identity; (2p, 2p) moves it up-left.
  EXPECT_TRUE(torch::equal(apply_augment(img4(), {{1, 1, false}}, 1), img4()));
  const auto ul = apply_augment(img4(), {{2, 2, false}}, 1);
  EXPECT_EQ(ul[0][0][0][0].item<int>(), 6);
  EXPECT_EQ(ul[0][0][3][3].item<int>(), 0);
  EXPECT_EQ(ul[0][0][2][2].item<int>(), 16);
}

TEST(Augment, FlipAndFlipTwice) {
  const auto f = apply_augment(img4(), {{0, 0, true}}, 0);
  EXPECT_TRUE(torch::equal(f, img4().flip({3})));
  EXPECT_TRUE(torch::equal(hflip(hflip(img4())), img4()));
  EXPECT_EQ(hflip(img4())[0][0][0][0].item<int>(), 4);
  // Crop then flip: flip of the shifted image.
  const auto cf = apply_augment(img4(), {{0, 0, true}}, 1);
  EXPECT_TRUE(torch::equal(cf, apply_augment(img4(), {{0, 0, false}}, 1).flip({3})));
}

TEST(Augment, PerImageParamsAndFloat) {
  auto batch = torch::cat({img4(), img4() * 2}).to(torch::kFloat32);  // [2,1,4,4]
  const auto out = apply_augment(batch, {{1, 1, false}, {1, 1, true}}, 1);
  EXPECT_EQ(out.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(out[0], batch[0]));
  EXPECT_TRUE(torch::equal(out[1], batch[1].flip({2})));
  GRADLENS_EXPECT_THROWS_WITH(apply_augment(batch, {{0, 0, false}}, 1), "1 parameter sets for a batch of 2");
  GRADLENS_EXPECT_THROWS_WITH(apply_augment(batch, {{3, 0, false}, {0, 0, false}}, 1),
                              "outside [0, 2]");
}

TEST(Augment, DeterministicGivenGenerator) {
  const auto batch = torch::randint(0, 256, {16, 3, 8, 8}, torch::kInt64).to(torch::kUInt8);
  std::mt19937_64 g1(5), g2(5), g3(6);
  const auto a = random_crop_flip(batch, {}, g1);
  const auto b = random_crop_flip(batch, {}, g2);
  const auto c = random_crop_flip(batch, {}, g3);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  // The generator advanced: the next batch differs from the first.
  EXPECT_FALSE(torch::equal(random_crop_flip(batch, {}, g1), a));
  // Matches sampling the parameters from the same seed and applying them.
  std::mt19937_64 g4(5);
  const auto params = sample_augment(16, {}, g4);
  EXPECT_TRUE(torch::equal(apply_augment(batch, params, 4), a));
}

TEST(Augment, ParameterDistribution) {
  std::mt19937_64 gen(1);
  AugmentOptions o;
  o.padding = 2;
  const auto p = sample_augment(20000, o, gen);
  std::vector<int> hist(5, 0);
  int flips = 0;
  for (const auto& q : p) {
    ASSERT_GE(q.dy, 0);
    ASSERT_LE(q.dy, 4);
    ++hist[static_cast<size_t>(q.dx)];
    flips += q.flip ? 1 : 0;
  }
  for (int h : hist) EXPECT_NEAR(h / 20000.0, 0.2, 0.02);
  EXPECT_NEAR(flips / 20000.0, 0.5, 0.02);
  // Disabled augmentation is the identity and draws nothing.
  o.padding = 0;
  o.flip_prob = 0;
  std::mt19937_64 g(1), untouched(1);
  const auto batch = torch::randint(0, 256, {4, 1, 5, 5}, torch::kInt64).to(torch::kUInt8);
  EXPECT_TRUE(torch::equal(random_crop_flip(batch, o, g), batch));
  EXPECT_EQ(g(), untouched());
  o.flip_prob = 1.5;
  GRADLENS_EXPECT_THROWS_WITH(sample_augment(1, o, g), "flip probability must be in [0, 1]");
}

}  // namespace
}  // namespace gradlens::data
