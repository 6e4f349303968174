#include "gradlens/saliency/fixation_metrics.h"

#include "support/support.h"

#include <torch/torch.h>

#include <cmath>
#include <set>

namespace gradlens::saliency {
namespace {

using test::SeededTest;

torch::Tensor fixation_map_2d(std::vector<double> v, int64_t h, int64_t w) {
  return torch::tensor(v, torch::kFloat64).reshape({h, w});
}

class FixationMetricsTest : public SeededTest {};

TEST_F(FixationMetricsTest, NssHandComputed) {
  const torch::Tensor s = fixation_map_2d({1, 2, 3, 4}, 2, 2);
  // mean 2.5, sample std sqrt(5/3): NSS at the pixel 4 is 1.5 / sqrt(5/3).
  EXPECT_NEAR(nss(s, fixation_map_2d({0, 0, 0, 1}, 2, 2)).values.item<double>(),
              1.5 / std::sqrt(5.0 / 3.0), 1e-15);
  // Symmetric fixations (pixels 1 and 4) average to 0; bool and count maps work.
  EXPECT_NEAR(nss(s, fixation_map_2d({1, 0, 0, 1}, 2, 2).to(torch::kBool)).values.item<double>(), 0.0,
              1e-15);
  EXPECT_NEAR(nss(s, fixation_map_2d({0, 0, 3, 0}, 2, 2)).values.item<double>(),
              0.5 / std::sqrt(5.0 / 3.0), 1e-15);
}

TEST_F(FixationMetricsTest, NssConstantMapIsZeroAndFlagged) {
  const MetricResult r = nss(torch::full({2, 3}, 7.0), fixation_map_2d({0, 1, 0, 0, 0, 1}, 2, 3));
  EXPECT_EQ(r.values.item<double>(), 0.0);
  EXPECT_TRUE(r.degenerate.item<bool>());
  EXPECT_EQ(r.num_degenerate, 1);
}

TEST_F(FixationMetricsTest, AucJuddHandComputed2x2) {
  // Normalised map (0, 3/7, 1/2.8, 1), fixations at 0.8 and 0.35. Thresholds
  // 1 and 0.357: points (0,0), (0,1/2), (1/2,1), (1,1) -> AUC 0.875.
  const torch::Tensor s = fixation_map_2d({0.1, 0.4, 0.35, 0.8}, 2, 2);
  const torch::Tensor f = fixation_map_2d({0, 0, 1, 1}, 2, 2);
  const MetricResult r = auc_judd(s, f);
  EXPECT_NEAR(r.values.item<double>(), 0.875, 1e-15);
  EXPECT_FALSE(r.degenerate.item<bool>());
  // Jitter below 1e-7 cannot reorder these values.
  EXPECT_NEAR(auc_judd(s, f, AucJuddOptions{true, 3}).values.item<double>(), 0.875, 1e-15);
}

TEST_F(FixationMetricsTest, AucJuddKeepsTheReferenceTieHandling3x3) {
  // Normalised (/4): 0 .25 .5 / .5 .5 .75 / .25 0 1; fixations at the 1 and at
  // two of the three 0.5s. Thresholds 1, .5, .5 with 5 pixels >= .5:
  // fp = 0, (5-2)/6, (5-3)/6 and tp = 1/3, 2/3, 1, so the curve steps back:
  // AUC = 1/4 - 5/36 + 2/3 = 7/9.
  const torch::Tensor s = fixation_map_2d({0, 1, 2, 2, 2, 3, 1, 0, 4}, 3, 3);
  const torch::Tensor f = fixation_map_2d({0, 0, 1, 1, 0, 0, 0, 0, 1}, 3, 3);
  EXPECT_NEAR(auc_judd(s, f).values.item<double>(), 7.0 / 9.0, 1e-15);
}

TEST_F(FixationMetricsTest, AucJuddConstantMap) {
  const torch::Tensor s = torch::zeros({4, 4});
  const torch::Tensor f = torch::zeros({4, 4}).index_put_({1, 2}, 1.0);
  MetricResult r = auc_judd(s, f);
  EXPECT_EQ(r.values.item<double>(), 0.5);
  EXPECT_TRUE(r.degenerate.item<bool>());
  // With jitter the value is a real (seeded, reproducible) AUC, still flagged.
  r = auc_judd(s, f, AucJuddOptions{true, 11});
  const double v = r.values.item<double>();
  EXPECT_GE(v, 0.0);
  EXPECT_LE(v, 1.0);
  EXPECT_TRUE(r.degenerate.item<bool>());
  EXPECT_EQ(auc_judd(s, f, AucJuddOptions{true, 11}).values.item<double>(), v);
}

TEST_F(FixationMetricsTest, AucJuddPerfectAndBatch) {
  torch::Tensor s = torch::rand({3, 8, 8}, torch::kFloat64);
  torch::Tensor f = torch::zeros({3, 8, 8});
  // Image 0: the fixation sits on the maximum -> AUC 1.
  const int64_t top = s[0].argmax().item<int64_t>();
  f[0].view({-1})[top] = 1;
  f[1][0][0] = 1;
  f[2][3][4] = 1;
  f[2][7][7] = 1;
  const MetricResult batch = auc_judd(s, f);
  EXPECT_NEAR(batch.values[0].item<double>(), 1.0, 1e-15);
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(batch.values[i].item<double>(), auc_judd(s[i], f[i]).values.item<double>());
  }
  // One fixation with `above` pixels above it: points (0,0), (above/63, 1),
  // (1,1), so AUC = 1 - above / 126.
  const int64_t above = (s[1] > s[1][0][0]).sum().item<int64_t>();
  EXPECT_NEAR(batch.values[1].item<double>(), 1.0 - above / 126.0, 1e-12);
}

TEST_F(FixationMetricsTest, AucBorjiMatchesClosedFormOfItsSamples) {
  // Fixated pixels have value 1, the rest 0. In a split where q of the F
  // negatives hit fixated pixels the curve is (0,0), (q/F,1), (1,1):
  // AUC = 1 - q / (2F).
  const int64_t h = 6, w = 7;
  torch::Tensor f = torch::zeros({h, w}, torch::kFloat64);
  f[0][0] = 1;
  f[2][3] = 1;
  f[5][6] = 1;
  f[4][1] = 1;
  const torch::Tensor s = f.clone();
  SampledAucOptions opt;
  opt.n_splits = 50;
  opt.seed = 7;
  opt.keep_negatives = true;
  const SampledAucResult r = auc_borji(s, f, opt);
  ASSERT_EQ(r.negatives.size(), 1u);
  const torch::Tensor neg = r.negatives[0];
  ASSERT_EQ(neg.sizes(), torch::IntArrayRef({50, 4}));
  EXPECT_GE(neg.min().item<int64_t>(), 0);
  EXPECT_LT(neg.max().item<int64_t>(), h * w);
  const torch::Tensor hits = f.view({-1}).index({neg}).sum(1);  // [50]
  const double expected = (1.0 - hits / 8.0).mean().item<double>();
  EXPECT_NEAR(r.values.item<double>(), expected, 1e-12);
  // Some splits do hit fixations (4 of 42 pixels, 200 draws).
  EXPECT_GT(hits.sum().item<double>(), 0.0);

  // Same seed -> same draw and value; another seed -> other negatives.
  const SampledAucResult again = auc_borji(s, f, opt);
  EXPECT_TRUE(torch::equal(again.negatives[0], neg));
  EXPECT_EQ(again.values.item<double>(), r.values.item<double>());
  opt.seed = 8;
  EXPECT_FALSE(torch::equal(auc_borji(s, f, opt).negatives[0], neg));
  opt.keep_negatives = false;
  EXPECT_TRUE(auc_borji(s, f, opt).negatives.empty());
}

TEST_F(FixationMetricsTest, AucBorjiConstantMapDrawsAndIsHalf) {
  const torch::Tensor s = torch::full({2, 5, 5}, 3.0);
  torch::Tensor f = torch::zeros({2, 5, 5});
  f[0][1][1] = 1;
  f[1][2][2] = 1;
  f[1][2][3] = 1;
  SampledAucOptions opt;
  opt.keep_negatives = true;
  const SampledAucResult r = auc_borji(s, f, opt);
  EXPECT_EQ(r.values[0].item<double>(), 0.5);
  EXPECT_EQ(r.values[1].item<double>(), 0.5);
  EXPECT_EQ(r.num_degenerate, 2);
  ASSERT_EQ(r.negatives.size(), 2u);
  EXPECT_EQ(r.negatives[1].sizes(), torch::IntArrayRef({100, 2}));
}

TEST_F(FixationMetricsTest, ShuffledAucClosedForms) {
  torch::Tensor f = torch::zeros({4, 4}, torch::kFloat64);
  f[0][0] = 1;
  f[1][2] = 1;
  f[3][3] = 1;
  const torch::Tensor s = f.clone() * 2.0;
  SampledAucOptions opt;
  opt.n_splits = 20;
  opt.keep_negatives = true;

  // Negatives drawn from the fixations themselves: tp == fp everywhere -> 0.5.
  SampledAucResult r = auc_shuffled(s, f, f, opt);
  EXPECT_NEAR(r.values.item<double>(), 0.5, 1e-15);
  ASSERT_EQ(r.negatives[0].sizes(), torch::IntArrayRef({20, 3}));

  // Other fixations on 5 zero pixels: perfect separation -> 1, k = min(3, 5).
  torch::Tensor other = torch::zeros({4, 4}, torch::kFloat64);
  const std::vector<int64_t> pool{1, 2, 5, 9, 12};
  for (int64_t idx : pool) other.view({-1})[idx] = 1;
  r = auc_shuffled(s, f, other, opt);
  EXPECT_NEAR(r.values.item<double>(), 1.0, 1e-15);
  const torch::Tensor neg = r.negatives[0];
  ASSERT_EQ(neg.sizes(), torch::IntArrayRef({20, 3}));
  std::set<std::vector<int64_t>> distinct_rows;
  for (int64_t split = 0; split < 20; ++split) {
    std::set<int64_t> row;
    for (int64_t j = 0; j < 3; ++j) {
      const int64_t idx = neg[split][j].item<int64_t>();
      EXPECT_TRUE(std::count(pool.begin(), pool.end(), idx) == 1) << idx;
      row.insert(idx);
    }
    EXPECT_EQ(row.size(), 3u) << "negatives of a split are drawn without replacement";
    distinct_rows.insert(std::vector<int64_t>(row.begin(), row.end()));
  }
  EXPECT_GT(distinct_rows.size(), 1u);

  // Fewer other fixations than fixations: k = O = 1.
  torch::Tensor single = torch::zeros({4, 4}, torch::kFloat64);
  single[2][2] = 1;
  r = auc_shuffled(s, f, single, opt);
  EXPECT_EQ(r.negatives[0].sizes(), torch::IntArrayRef({20, 1}));
  EXPECT_NEAR(r.values.item<double>(), 1.0, 1e-15);
}

TEST_F(FixationMetricsTest, ShuffledAucSharedOtherMapEqualsPerImageCopies) {
  const torch::Tensor s = torch::rand({3, 6, 6}, torch::kFloat64);
  torch::Tensor f = (torch::rand({3, 6, 6}) < 0.2).to(torch::kFloat64);
  f.index_put_({torch::indexing::Slice(), 0, 0}, 1.0);
  torch::Tensor other = (torch::rand({6, 6}) < 0.3).to(torch::kFloat64);
  other.index_put_({5, 5}, 1.0);
  SampledAucOptions opt;
  opt.seed = 42;
  const SampledAucResult shared = auc_shuffled(s, f, other, opt);
  const SampledAucResult copies = auc_shuffled(s, f, other.expand({3, 6, 6}), opt);
  EXPECT_TRUE(torch::equal(shared.values, copies.values));
  EXPECT_EQ(shared.num_degenerate, 0);
}

TEST_F(FixationMetricsTest, RejectsBadInputs) {
  const torch::Tensor s = torch::rand({2, 4, 4});
  torch::Tensor f = torch::zeros({2, 4, 4});
  f[0][0][0] = 1;
  // Image 1 has no fixation.
  GRADLENS_EXPECT_THROWS_WITH(nss(s, f), "fixations of image 1 has no fixated pixel");
  GRADLENS_EXPECT_THROWS_WITH(auc_judd(s, f), "image 1 has no fixated pixel");
  GRADLENS_EXPECT_THROWS_WITH(auc_borji(s, f), "image 1 has no fixated pixel");
  GRADLENS_EXPECT_THROWS_WITH(auc_shuffled(s, f, f[0]), "image 1 has no fixated pixel");
  f[1][3][3] = 1;
  GRADLENS_EXPECT_THROWS_WITH(nss(s, torch::zeros({2, 4, 5})), "[2, 4, 5]");
  GRADLENS_EXPECT_THROWS_WITH(auc_judd(s, f[0]), "[4, 4]");
  GRADLENS_EXPECT_THROWS_WITH(auc_judd(s[0], torch::ones({4, 4})), "every pixel");
  GRADLENS_EXPECT_THROWS_WITH(auc_borji(s, -f), "non-negative");
  GRADLENS_EXPECT_THROWS_WITH(nss(s, -f), "negative");
  torch::Tensor nan = s.clone();
  nan[1][1][1] = INFINITY;
  GRADLENS_EXPECT_THROWS_WITH(auc_judd(nan, f), "saliency of image 1");
  GRADLENS_EXPECT_THROWS_WITH(nss(nan, f), "saliency of image 1");
  GRADLENS_EXPECT_THROWS_WITH(auc_shuffled(s, f, torch::zeros({4, 4})), "no pixel > 0");
  GRADLENS_EXPECT_THROWS_WITH(auc_shuffled(s, f, torch::ones({3, 4, 4})), "other_fixations");
  SampledAucOptions bad;
  bad.n_splits = 0;
  GRADLENS_EXPECT_THROWS_WITH(auc_borji(s, f, bad), "n_splits");
  bad.n_splits = 1;
  bad.step_size = 0.0;
  GRADLENS_EXPECT_THROWS_WITH(auc_shuffled(s, f, f, bad), "step_size");
}

}  // namespace
}  // namespace gradlens::saliency
