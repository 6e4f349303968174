// Map comparisons (saliency/compare.h) on hand-computed cases.
#include "gradlens/saliency/compare.h"

#include <torch/torch.h>

#include <cmath>

#include "support/support.h"

namespace gradlens::saliency {
namespace {

double value(const MapComparison& c, const std::string& metric, int64_t i) {
  return c.get(metric).result.values[i].item<double>();
}
bool flagged(const MapComparison& c, const std::string& metric, int64_t i) {
  return c.get(metric).result.degenerate[i].item<bool>();
}

TEST(Compare, IdenticalMapsOfTwoModelsAgreePerfectlyAndNssAndAucJuddInClosedForm) {
  // One 2x2 map [0, 0.2; 0.6, 1]: fixations (normalised >= 0.5) are 0.6 and 1.
  // NSS: mean 0.45, sample std sqrt(0.59 / 3); (0.15 + 0.55) / 2 / std.
  // AUC-Judd: thresholds 1, 0.6 -> (fp, tp) = (0, 0.5), (0, 1): AUC 1.
  const auto m = torch::tensor({0.0, 0.2, 0.6, 1.0}).view({1, 2, 2});
  const auto c = compare_models(m, m.clone());
  EXPECT_EQ(c.kind, "models");
  ASSERT_EQ(c.metrics.size(), 6u);
  for (size_t j = 0; j < 6; ++j) EXPECT_EQ(c.metrics[j].name, comparison_metric_names()[j]);
  EXPECT_NEAR(value(c, "CC", 0), 1.0, 1e-12);
  EXPECT_NEAR(value(c, "SIM", 0), 1.0, 1e-12);
  EXPECT_NEAR(value(c, "KLD", 0), 0.0, 1e-9);
  EXPECT_NEAR(value(c, "NSS", 0), 0.35 / std::sqrt(0.59 / 3.0), 1e-6);
  EXPECT_NEAR(value(c, "AUC-Judd", 0), 1.0, 1e-12);
  const double borji = value(c, "AUC-Borji", 0);
  EXPECT_GE(borji, 0.5);
  EXPECT_LE(borji, 1.0);
  EXPECT_EQ(c.num_map_constant, 0);
  EXPECT_EQ(c.num_reference_constant, 0);
  EXPECT_EQ(c.num_fixations_degenerate, 0);
  for (const auto& col : c.metrics) {
    EXPECT_TRUE(col.summarized);
    EXPECT_EQ(col.summary.num_images, 1);
    EXPECT_EQ(col.summary.std, 0.0);
  }
}

TEST(Compare, FixationsOfAContinuousReferenceAreItsTopAfterMinMaxScaling) {
  const auto r = torch::tensor({0.0, 0.2, 0.6, 1.0}).view({1, 2, 2});
  const auto expected = torch::tensor({0, 0, 1, 1}, torch::kByte).view({1, 2, 2});
  EXPECT_TRUE(torch::equal(fixations_from_reference(r, 0.5), expected));
  EXPECT_TRUE(torch::equal(fixations_from_reference(r * 3 + 1, 0.5), expected));
  EXPECT_TRUE(torch::equal(fixations_from_reference(r, 1.0),
                           torch::tensor({0, 0, 0, 1}, torch::kByte).view({1, 2, 2})));
  EXPECT_EQ(fixations_from_reference(torch::full({1, 2, 2}, 0.3), 0.5).sum().item<int64_t>(), 0);
  GRADLENS_EXPECT_THROWS_WITH(fixations_from_reference(r, 0.0), "--fixation-threshold");
}

TEST(Compare, ClassMeansAndLeaveOneOut) {
  torch::manual_seed(0);
  const auto maps = torch::rand({3, 4, 5});
  const auto labels = torch::tensor({0, 2, 0}, torch::kLong);
  const auto means = class_mean_maps(maps, labels, 3);
  ASSERT_EQ(means.sizes(), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_LT(test::max_abs_diff(means[0], (maps[0] + maps[2]) / 2), 1e-6);
  EXPECT_EQ(means[1].abs().sum().item<double>(), 0.0);  // no image of class 1
  EXPECT_LT(test::max_abs_diff(means[2], maps[1]), 1e-7);

  // Image 1 is alone in class 2: its own mean is itself (CC 1).
  auto c = compare_to_class_mean(maps, labels, 3);
  EXPECT_EQ(c.kind, "class-mean");
  EXPECT_NEAR(value(c, "CC", 1), 1.0, 1e-9);
  // CC of image 0 with (m0 + m2) / 2, computed by hand.
  auto pearson = [](const torch::Tensor& a, const torch::Tensor& b) {
    const auto x = a.to(torch::kDouble).flatten() - a.to(torch::kDouble).mean();
    const auto y = b.to(torch::kDouble).flatten() - b.to(torch::kDouble).mean();
    return (x * y).sum().item<double>() / std::sqrt((x * x).sum().item<double>() * (y * y).sum().item<double>());
  };
  EXPECT_NEAR(value(c, "CC", 0), pearson(maps[0], (maps[0] + maps[2]) / 2), 1e-6);

  // Leave one out: image 0 against m2, image 2 against m0, image 1 against
  // nothing (an all-zero map: flagged, chance values).
  CompareOptions o;
  o.leave_one_out = true;
  c = compare_to_class_mean(maps, labels, 3, o);
  EXPECT_NEAR(value(c, "CC", 0), pearson(maps[0], maps[2]), 1e-6);
  EXPECT_NEAR(value(c, "CC", 2), pearson(maps[2], maps[0]), 1e-6);
  EXPECT_EQ(c.num_reference_constant, 1);
  EXPECT_TRUE(c.reference_constant[1].item<bool>());
  EXPECT_EQ(c.num_fixations_degenerate, 1);
  EXPECT_EQ(value(c, "CC", 1), 0.0);
  EXPECT_TRUE(flagged(c, "CC", 1));
  EXPECT_EQ(value(c, "NSS", 1), 0.0);
  EXPECT_TRUE(flagged(c, "NSS", 1));
  EXPECT_EQ(value(c, "AUC-Judd", 1), 0.5);
  EXPECT_EQ(value(c, "AUC-Borji", 1), 0.5);
  EXPECT_TRUE(flagged(c, "AUC-Borji", 1));
  EXPECT_FALSE(flagged(c, "AUC-Borji", 0));
  // Summaries: mean and population std of the per-image values, all counted.
  const auto& cc = c.get("CC");
  const auto v = cc.result.values;
  EXPECT_NEAR(cc.summary.mean, v.mean().item<double>(), 1e-12);
  EXPECT_NEAR(cc.summary.std, v.std(false).item<double>(), 1e-12);
  EXPECT_EQ(cc.summary.count, 3);
  EXPECT_EQ(cc.summary.num_degenerate, 1);
  // ... or without the degenerate image.
  o.summary.exclude_degenerate = true;
  c = compare_to_class_mean(maps, labels, 3, o);
  EXPECT_EQ(c.get("CC").summary.count, 2);
  GRADLENS_EXPECT_THROWS_WITH(compare_to_class_mean(maps, labels, 2), "must lie in [0, 2)");
}

TEST(Compare, MapAgainstAMaskUsesTheMaskAsFixationsAndAsAContinuousMap) {
  // Mask: the left half of a 4x6 image (0/255, [N, 1, H, W] as Dataset holds it).
  auto mask = torch::zeros({2, 1, 4, 6}, torch::kByte);
  mask.slice(3, 0, 3).fill_(255);
  // Map 0: distinct values, every object pixel above every background pixel
  // (AUC-Judd 1); map 1: the mask itself as a float map (CC 1, SIM 1).
  auto m0 = torch::arange(24, torch::kFloat).view({4, 6});
  m0 = torch::where(mask[0][0] > 0, m0 + 100, m0) / 200;
  const auto maps = torch::stack({m0, mask[1][0].to(torch::kFloat) / 255});
  const auto c = compare_to_masks(maps, mask);
  EXPECT_EQ(c.kind, "mask");
  EXPECT_NEAR(value(c, "AUC-Judd", 0), 1.0, 1e-12);
  EXPECT_GT(value(c, "NSS", 0), 0.9);
  EXPECT_NEAR(value(c, "CC", 1), 1.0, 1e-12);
  EXPECT_NEAR(value(c, "SIM", 1), 1.0, 1e-12);
  // A perfect map against half the image: NSS = mean over the object of the
  // standardised map = 1 / sample std of a 0/1 map with p = 1/2 over 24 px.
  EXPECT_NEAR(value(c, "NSS", 1), 0.5 / std::sqrt(24 * 0.25 / 23), 1e-9);
  EXPECT_EQ(c.num_fixations_degenerate, 0);
  // [N, H, W] masks and float masks work too.
  const auto c3 = compare_to_masks(maps, mask.squeeze(1).to(torch::kFloat) / 255);
  EXPECT_NEAR(value(c3, "CC", 1), 1.0, 1e-12);

  // An all-zero mask (no object) is flagged for the fixation metrics.
  auto empty = mask.clone();
  empty[1].zero_();
  const auto ce = compare_to_masks(maps, empty);
  EXPECT_EQ(ce.num_fixations_degenerate, 1);
  EXPECT_EQ(ce.num_reference_constant, 1);
  EXPECT_TRUE(flagged(ce, "NSS", 1));
  EXPECT_EQ(value(ce, "AUC-Judd", 1), 0.5);
  EXPECT_FALSE(flagged(ce, "AUC-Judd", 0));
  EXPECT_NEAR(value(ce, "AUC-Judd", 0), 1.0, 1e-12);

  GRADLENS_EXPECT_THROWS_WITH(compare_to_masks(maps, torch::zeros({2, 1, 4, 5}, torch::kByte)),
                              "masks have shape [2, 4, 5]");
  GRADLENS_EXPECT_THROWS_WITH(compare_to_masks(maps, torch::zeros({2, 3, 4, 6}, torch::kByte)),
                              "[N, 1, H, W] or [N, H, W]");
}

TEST(Compare, AllZeroMapsAreCountedNotNaN) {
  torch::manual_seed(1);
  const auto a = torch::stack({torch::zeros({5, 5}), torch::rand({5, 5})});
  const auto b = torch::rand({2, 5, 5});
  const auto c = compare_models(a, b);
  EXPECT_EQ(c.num_map_constant, 1);
  EXPECT_TRUE(c.map_constant[0].item<bool>());
  for (const auto& col : c.metrics) {
    EXPECT_TRUE(torch::isfinite(col.result.values).all().item<bool>()) << col.name;
    EXPECT_TRUE(col.result.degenerate[0].item<bool>()) << col.name;
    EXPECT_FALSE(col.result.degenerate[1].item<bool>()) << col.name;
    EXPECT_TRUE(std::isfinite(col.summary.mean)) << col.name;
  }
  EXPECT_EQ(value(c, "CC", 0), 0.0);
  EXPECT_EQ(value(c, "AUC-Judd", 0), 0.5);
  // Every image degenerate and excluded: no summary, but no NaN and no throw.
  CompareOptions o;
  o.summary.exclude_degenerate = true;
  const auto z = compare_models(torch::zeros({2, 3, 3}), torch::rand({2, 3, 3}), o);
  EXPECT_FALSE(z.get("CC").summarized);
  EXPECT_EQ(z.get("CC").summary.num_degenerate, 2);
  GRADLENS_EXPECT_THROWS_WITH(z.get("AUC"), "CC, KLD, SIM, NSS, AUC-Judd, AUC-Borji");
}

TEST(Compare, AucBorjiIsSeeded) {
  torch::manual_seed(2);
  const auto a = torch::rand({3, 6, 6});
  const auto b = torch::rand({3, 6, 6});
  CompareOptions o;
  o.auc_borji.seed = 5;
  const auto x = compare_models(a, b, o);
  const auto y = compare_models(a, b, o);
  EXPECT_TRUE(torch::equal(x.get("AUC-Borji").result.values, y.get("AUC-Borji").result.values));
}

}  // namespace
}  // namespace gradlens::saliency
