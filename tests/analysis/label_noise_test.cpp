#include "gradlens/analysis/label_noise.h"

#include <torch/torch.h>

#include <cmath>

#include "support/support.h"

namespace gradlens::analysis {
namespace {

TEST(LabelNoise, AumIsTheNegatedMeanMargin) {
  const auto m = torch::tensor({{1.0f, -2.0f, 0.5f}, {3.0f, -1.0f, 0.5f}});
  const auto s = aum_score(m);
  EXPECT_DOUBLE_EQ(s[0].item<double>(), -2.0);
  EXPECT_DOUBLE_EQ(s[1].item<double>(), 1.5);
  EXPECT_DOUBLE_EQ(s[2].item<double>(), -0.5);
}

TEST(LabelNoise, ForgettingCountsCorrectToWrongTransitionsAndRanksNeverLearnedFirst) {
  // Four epochs; image 0: 1 0 1 0 -> 2 events; image 1: 0 1 1 1 -> 0; image 2: 0 0 0 0 -> never learned (4);
  // image 3: 1 1 1 0 -> 1.
  const auto c = torch::tensor({{1, 0, 0, 1}, {0, 1, 0, 1}, {1, 1, 0, 1}, {0, 1, 0, 0}}, torch::kUInt8);
  const auto s = forgetting_score(c);
  EXPECT_TRUE(torch::equal(s, torch::tensor({2.0, 0.0, 4.0, 1.0}, torch::kFloat64)));
}

TEST(LabelNoise, DataMapScoresAreOneMinusMeanAndPopulationStd) {
  const auto p = torch::tensor({{0.2f, 0.9f}, {0.4f, 0.9f}, {0.9f, 0.9f}});
  const auto conf = low_confidence_score(p);
  const auto var = variability_score(p);
  EXPECT_NEAR(conf[0].item<double>(), 1 - 0.5, 1e-7);
  EXPECT_NEAR(conf[1].item<double>(), 0.1, 1e-7);
  // population std of (0.2, 0.4, 0.9): mean 0.5, deviations -0.3 -0.1 0.4
  EXPECT_NEAR(var[0].item<double>(), std::sqrt((0.09 + 0.01 + 0.16) / 3), 1e-7);
  EXPECT_NEAR(var[1].item<double>(), 0.0, 1e-7);
}

TEST(LabelNoise, El2nTakesTheChosenEpochAndNamesTheFlagOtherwise) {
  const auto e = torch::tensor({{0.1f, 0.2f}, {0.3f, 0.4f}});
  EXPECT_NEAR(el2n_score(e, 2)[1].item<double>(), 0.4, 1e-7);
  try {
    el2n_score(e, 3);
    FAIL() << "no error";
  } catch (const c10::Error& err) {
    EXPECT_NE(std::string(err.what_without_backtrace()).find("--el2n-epoch 3"), std::string::npos);
  }
}

TEST(LabelNoise, FoundAtFractionCountsPositivesInTheTopOfTheRanking) {
  // 10 images, positives 0, 3 and 7; ranking by score: 7, 1, 3, 0, ...
  const auto s = torch::tensor({0.6, 0.8, 0.1, 0.7, 0.2, 0.3, 0.0, 0.9, 0.4, 0.5}, torch::kFloat64);
  auto pos = torch::zeros({10}, torch::kBool);
  pos[0] = true, pos[3] = true, pos[7] = true;
  EXPECT_DOUBLE_EQ(found_at_fraction(s, pos, 0.1), 1.0 / 3);   // top 1: 7
  EXPECT_DOUBLE_EQ(found_at_fraction(s, pos, 0.2), 1.0 / 3);   // 7, 1
  EXPECT_DOUBLE_EQ(found_at_fraction(s, pos, 0.3), 2.0 / 3);   // 7, 1, 3
  EXPECT_DOUBLE_EQ(found_at_fraction(s, pos, 0.4), 1.0);       // + 0
  EXPECT_DOUBLE_EQ(found_at_fraction(s, pos, 0.25), 2.0 / 3);  // ceil(2.5) = 3
  const auto curve = found_curve(s, pos, 10);
  EXPECT_TRUE(torch::allclose(curve, torch::tensor({1.0 / 3, 1.0 / 3, 2.0 / 3, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0},
                                                   torch::kFloat64)));
  EXPECT_THROW(found_at_fraction(s, torch::zeros({10}, torch::kBool), 0.1), c10::Error);
  EXPECT_THROW(found_at_fraction(s, pos, 0.0), c10::Error);
}

TEST(LabelNoise, RankingOrderBreaksTiesByTheLowerIndex) {
  const auto order = ranking_order(torch::tensor({1.0, 3.0, 1.0, 3.0, 2.0}, torch::kFloat64));
  EXPECT_TRUE(torch::equal(order, torch::tensor({1, 3, 4, 0, 2}, torch::kInt64)));
}

TEST(LabelNoise, ThresholdSamplesAreASeededSampleOfNOverKPlusOne) {
  const auto a = threshold_samples(110, 10, 3);
  EXPECT_EQ(a.sum().item<int64_t>(), 10);  // floor(110 / 11)
  EXPECT_TRUE(torch::equal(a, threshold_samples(110, 10, 3)));
  EXPECT_FALSE(torch::equal(a, threshold_samples(110, 10, 4)));
  EXPECT_THROW(threshold_samples(5, 10, 0), c10::Error);
}

TEST(LabelNoise, AumThresholdIsNumpysLinearPercentileOfTheThresholdSamplesAum) {
  // AUM = -score; threshold samples 0, 2, 3, 4 have AUM -1, 2, 0.5, 4.
  const auto scores = torch::tensor({1.0, 9.0, -2.0, -0.5, -4.0}, torch::kFloat64);
  const auto mask = torch::tensor({1, 0, 1, 1, 1}, torch::kUInt8);
  // sorted (-1, 0.5, 2, 4): the 99th percentile sits at position 2.97 -> 2 + 0.97 * 2 = 3.94.
  EXPECT_NEAR(aum_threshold(scores, mask, 99.0), 3.94, 1e-12);
  EXPECT_NEAR(aum_threshold(scores, mask, 50.0), 1.25, 1e-12);
  EXPECT_THROW(aum_threshold(scores, torch::zeros({5}, torch::kUInt8)), c10::Error);
}

}  // namespace
}  // namespace gradlens::analysis
