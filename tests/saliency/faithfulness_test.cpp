// Closed-form cases of the faithfulness and localisation metrics.
#include <torch/torch.h>

#include "gradlens/core/check.h"
#include "gradlens/saliency/faithfulness.h"
#include "gradlens/saliency/localisation.h"
#include "support/support.h"

namespace gradlens::saliency {
namespace {

torch::Tensor square_mask() {
  auto m = torch::zeros({1, 6, 6}, torch::kDouble);
  m[0].slice(0, 1, 3).slice(1, 2, 5).fill_(1);  // 6 object pixels
  return m;
}

TEST(Localisation, AMapEqualToTheMaskScoresOneItsComplementZero) {
  const auto mask = square_mask();
  EXPECT_EQ(pointing_game(mask, mask, 0).item<double>(), 1.0);
  EXPECT_EQ(energy_pointing_game(mask, mask).item<double>(), 1.0);
  EXPECT_EQ(relevance_rank_accuracy(mask, mask).item<double>(), 1.0);
  const auto complement = 1 - mask;
  EXPECT_EQ(pointing_game(complement, mask, 0).item<double>(), 0.0);
  EXPECT_EQ(energy_pointing_game(complement, mask).item<double>(), 0.0);
  EXPECT_EQ(relevance_rank_accuracy(complement, mask).item<double>(), 0.0);
  // The complement's first maximum is pixel (0, 0), sqrt(5) = 2.236 px from
  // the object's nearest pixel (1, 2).
  EXPECT_EQ(pointing_game(complement, mask, 2.2).item<double>(), 0.0);
  EXPECT_EQ(pointing_game(complement, mask, 2.25).item<double>(), 1.0);
}

TEST(Localisation, AConstantMapScoresTheMaskShareAndRowMajorTies) {
  const auto mask = square_mask();
  const auto flat = torch::full({1, 6, 6}, 0.5, torch::kDouble);
  EXPECT_NEAR(energy_pointing_game(flat, mask).item<double>(), 6.0 / 36.0, 1e-15);
  // Ties ranked in row-major order: the top 6 are row 0, outside the object.
  EXPECT_EQ(relevance_rank_accuracy(flat, mask).item<double>(), 0.0);
  // An all-zero map has no energy; an empty mask nothing to point at.
  EXPECT_TRUE(std::isnan(energy_pointing_game(torch::zeros_like(mask), mask).item<double>()));
  EXPECT_TRUE(std::isnan(pointing_game(mask, torch::zeros_like(mask)).item<double>()));
  GRADLENS_EXPECT_THROWS_WITH(energy_pointing_game(-mask, mask), "non-negative");
  GRADLENS_EXPECT_THROWS_WITH(energy_pointing_game(mask, mask[0]), "must have the same shape");
  GRADLENS_EXPECT_THROWS_WITH(energy_pointing_game(mask[0], mask[0]), "must be a non-empty [N, H, W]");
}

/// A linear model on the pixel sum of channel 0: logits (s, 0) for s = sum x.
LogitsFn sum_model() {
  return [](const torch::Tensor& x) {
    const auto s = x.select(1, 0).sum({1, 2});
    return torch::stack({s, torch::zeros_like(s)}, 1);
  };
}

TEST(Faithfulness, ACurveOfAModelThatIgnoresTheImageIsFlat) {
  const auto images = torch::randn({3, 2, 5, 5}, torch::kDouble);
  const auto maps = torch::rand({3, 5, 5}, torch::kDouble);
  const auto targets = torch::tensor({0, 1, 2}, torch::kLong);
  const LogitsFn constant = [](const torch::Tensor& x) {
    return torch::tensor({1.0, 2.0, 3.0}, torch::kDouble).expand({x.size(0), 3});
  };
  const auto p = torch::softmax(torch::tensor({1.0, 2.0, 3.0}, torch::kDouble), 0);
  const auto del = deletion_curve(constant, images, maps, targets);
  EXPECT_LT(test::max_abs_diff(del.auc, p), 1e-15);
  EXPECT_EQ(del.fractions.size(0), 21);
  EXPECT_DOUBLE_EQ(del.fractions[20].item<double>(), 1.0);
}

TEST(Faithfulness, DeletionRemovesTheMostRelevantPixelFirst) {
  // One image of 4 pixels with values 4, 3, 2, 1; the sum model's class-0
  // probability is sigmoid(sum). Deleting in the order of the map (a
  // permutation) with a zero baseline leaves sums 10, 10 - x1, ...
  auto img = torch::tensor({4.0, 3.0, 2.0, 1.0}, torch::kDouble).view({1, 1, 2, 2});
  auto map = torch::tensor({0.1, 0.9, 0.5, 0.7}, torch::kDouble).view({1, 2, 2});  // order: 3, 1, 2, 4
  PerturbationOptions o;
  o.steps = 4;
  const auto r = deletion_curve(sum_model(), img, map, torch::tensor({0}, torch::kLong), o);
  const auto sums = torch::tensor({10.0, 7.0, 6.0, 4.0, 0.0}, torch::kDouble);
  EXPECT_LT(test::max_abs_diff(r.probs[0], torch::sigmoid(sums)), 1e-15);
  const auto ins = insertion_curve(sum_model(), img, map, torch::tensor({0}, torch::kLong), o);
  EXPECT_LT(test::max_abs_diff(ins.probs[0], torch::sigmoid(torch::tensor({0.0, 3.0, 4.0, 6.0, 10.0},
                                                                          torch::kDouble))), 1e-15);
  // Trapezoid rule over fractions 0, 1/4, ..., 1.
  const auto s = torch::sigmoid(sums);
  const double auc = ((s.slice(0, 1) + s.slice(0, 0, 4)) * 0.125).sum().item<double>();
  EXPECT_NEAR(r.auc.item<double>(), auc, 1e-15);
}

TEST(Faithfulness, ConfidenceChangeOfAnAllOnesMapIsZeroDropNoIncrease) {
  const auto images = torch::rand({4, 1, 3, 3}, torch::kDouble);
  const auto ones = torch::ones({4, 3, 3}, torch::kDouble);
  const auto targets = torch::zeros({4}, torch::kLong);
  const auto r = confidence_change(sum_model(), images, ones, targets);
  EXPECT_EQ(r.drop.abs().max().item<double>(), 0.0);
  EXPECT_EQ(r.increase.sum().item<double>(), 0.0);
  // A zero map on positive images lowers the sum to 0: drop = 1 - 0.5 / Y.
  const auto z = confidence_change(sum_model(), images, torch::zeros_like(ones), targets);
  EXPECT_LT(test::max_abs_diff(z.drop, 1 - 0.5 / z.original), 1e-15);
  GRADLENS_EXPECT_THROWS_WITH(confidence_change(sum_model(), images, ones, torch::full({4}, 5, torch::kLong)),
                              "targets must lie in [0, 2)");
}

}  // namespace
}  // namespace gradlens::saliency
