// ROAD's imputation on images whose answer is known, its noise and its order.
#include "gradlens/saliency/road.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "support/support.h"

namespace gradlens::saliency {
namespace {

TEST(LinearImputation, ReproducesConstantAndLinearImagesAndKeepsKeptPixels) {
  const int64_t h = 10, w = 12;
  // A ramp a + b y + c x is its own weighted neighbour mean away from the
  // border (the weights are symmetric), so an interior hole is filled exactly.
  const auto yy = torch::arange(h, torch::kDouble).view({h, 1}).expand({h, w});
  const auto xx = torch::arange(w, torch::kDouble).view({1, w}).expand({h, w});
  const auto img = torch::stack({torch::full({h, w}, 3.5, torch::kDouble), 1.0 + 0.5 * yy - 2.0 * xx}).unsqueeze(0);
  auto removed = torch::zeros({1, h, w}, torch::kBool);
  removed[0].slice(0, 2, 8).slice(1, 3, 10).fill_(true);
  removed[0][5][1] = true;
  const auto out = linear_imputation(img, removed);
  EXPECT_LT((out - img).abs().max().item<double>(), 1e-12);
  // Anything else in the hole is replaced; kept pixels never change.
  auto noisy = img.clone();
  noisy.masked_fill_(removed.unsqueeze(1).expand_as(noisy), 100.0);
  const auto fixed = linear_imputation(noisy, removed);
  EXPECT_LT((fixed - img).abs().max().item<double>(), 1e-12);
  EXPECT_EQ(fixed.dtype(), torch::kDouble);
  // A hole at the corner: the weights renormalise over in-image neighbours,
  // so a constant image stays constant there too.
  auto corner = torch::zeros({1, h, w}, torch::kBool);
  corner[0].slice(0, 0, 3).slice(1, 0, 3).fill_(true);
  EXPECT_LT((linear_imputation(img, corner)[0][0] - 3.5).abs().max().item<double>(), 1e-12);
}

TEST(LinearImputation, OneMissingPixelIsTheWeightedMeanOfItsNeighbours) {
  auto v = torch::arange(9, torch::kFloat).reshape({1, 1, 3, 3});
  v[0][0][0][0] = 7.0f;  // break the ramp so the mean is not trivially the centre
  auto removed = torch::zeros({1, 3, 3}, torch::kBool);
  removed[0][1][1] = true;
  const auto out = linear_imputation(v, removed);
  // (1/12)(7 + 2 + 6 + 8) + (1/6)(1 + 3 + 5 + 7)
  EXPECT_NEAR(out[0][0][1][1].item<double>(), (7 + 2 + 6 + 8) / 12.0 + (1 + 3 + 5 + 7) / 6.0, 1e-5);
  EXPECT_EQ(out.dtype(), torch::kFloat);
}

TEST(LinearImputation, BadInputIsRefused) {
  const auto img = torch::zeros({2, 1, 4, 4});
  auto all = torch::zeros({2, 4, 4}, torch::kBool);
  all[1].fill_(true);
  GRADLENS_EXPECT_THROWS_WITH(linear_imputation(img, all), "image 1 has every pixel removed");
  EXPECT_THROW(linear_imputation(img, torch::zeros({2, 4, 5}, torch::kBool)), c10::Error);
  EXPECT_THROW(linear_imputation(img, torch::zeros({2, 4, 4})), c10::Error);
}

TEST(Road, NoiseIsSeededIndependentOfBatchingAndMovesTheProbabilities) {
  torch::manual_seed(2);
  const auto images = torch::randn({5, 2, 6, 6});
  const auto maps = torch::rand({5, 6, 6});
  const auto targets = torch::tensor({0, 1, 2, 0, 1}, torch::kLong);
  const auto W = torch::randn({3, 72});
  const LogitsFn model = [&](const torch::Tensor& x) { return x.flatten(1).matmul(W.t()); };
  RoadOptions o;
  o.noise = 0.2;
  o.seed = 4;
  o.batch_size = 7;
  const auto a = road(model, images, maps, targets, o);
  o.batch_size = 1000;
  const auto b = road(model, images, maps, targets, o);
  EXPECT_LT((a.morf - b.morf).abs().max().item<double>(), 1e-6);
  EXPECT_LT((a.lerf - b.lerf).abs().max().item<double>(), 1e-6);
  o.noise = 0;
  const auto clean = road(model, images, maps, targets, o);
  EXPECT_GT((a.morf - clean.morf).abs().max().item<double>(), 1e-4);
  ASSERT_EQ(a.morf.sizes(), torch::IntArrayRef({5, 9}));
  EXPECT_TRUE(torch::allclose(a.morf_mean, a.morf.mean(1)));
  EXPECT_TRUE(torch::allclose(a.combined, (a.lerf_mean - a.morf_mean) / 2));
  o.fractions = {0.0};
  EXPECT_THROW(road(model, images, maps, targets, o), c10::Error);
  o.fractions = {0.5};
  o.noise = -1;
  EXPECT_THROW(road(model, images, maps, targets, o), c10::Error);
}

TEST(Road, MostRelevantFirstRemovesWhatTheMapRanksHighest) {
  // A model that reads one pixel: a map pointing at it makes MoRF fall and
  // LeRF stay; imputation cannot bring a single bright pixel back.
  auto images = torch::zeros({1, 1, 8, 8});
  images[0][0][3][4] = 10.0f;
  auto maps = torch::zeros({1, 8, 8});
  maps[0][3][4] = 1.0f;
  const LogitsFn model = [](const torch::Tensor& x) {
    const auto v = x.select(1, 0).select(1, 3).select(1, 4);
    return torch::stack({v, torch::zeros_like(v)}, 1);
  };
  RoadOptions o;
  o.noise = 0;
  o.fractions = {0.1, 0.5};
  const auto r = road(model, images, maps, torch::tensor({0}, torch::kLong), o);
  EXPECT_LT(r.morf.max().item<double>(), 0.51);   // the pixel is gone (imputed from zeros)
  EXPECT_GT(r.lerf.min().item<double>(), 0.999);  // the pixel stays
  EXPECT_GT(r.combined[0].item<double>(), 0.24);
}

}  // namespace
}  // namespace gradlens::saliency
