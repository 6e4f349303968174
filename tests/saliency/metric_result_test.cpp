#include "gradlens/saliency/metric_result.h"

#include "support/support.h"

#include <torch/torch.h>

#include <cmath>

namespace gradlens::saliency {
namespace {

TEST(MetricSummaryTest, MeanStdAndDegenerateCount) {
  const torch::Tensor v = torch::tensor({1.0, 2.0, 3.0, 6.0}, torch::kFloat64);
  const torch::Tensor d = torch::tensor({false, false, true, false});
  const MetricSummary all = summarize(v, d);
  EXPECT_DOUBLE_EQ(all.mean, 3.0);
  EXPECT_NEAR(all.std, std::sqrt((4.0 + 1.0 + 0.0 + 9.0) / 4.0), 1e-15);
  EXPECT_EQ(all.count, 4);
  EXPECT_EQ(all.num_images, 4);
  EXPECT_EQ(all.num_degenerate, 1);

  MetricResult r;
  r.values = v;
  r.degenerate = d;
  const MetricSummary kept = summarize(r, SummaryOptions{true});
  EXPECT_DOUBLE_EQ(kept.mean, 3.0);
  EXPECT_NEAR(kept.std, std::sqrt((4.0 + 1.0 + 9.0) / 3.0), 1e-15);
  EXPECT_EQ(kept.count, 3);
  EXPECT_EQ(kept.num_images, 4);
  EXPECT_EQ(kept.num_degenerate, 1);
}

TEST(MetricSummaryTest, SingleValueHasZeroStd) {
  const MetricSummary s = summarize(torch::tensor({0.7}), torch::tensor({false}));
  EXPECT_NEAR(s.mean, 0.7, 1e-7);
  EXPECT_EQ(s.std, 0.0);
}

TEST(MetricSummaryTest, NeverMakesUpAMean) {
  GRADLENS_EXPECT_THROWS_WITH(
      summarize(torch::tensor({0.5, 0.5}), torch::tensor({true, true}), SummaryOptions{true}),
      "no value to summarise");
  GRADLENS_EXPECT_THROWS_WITH(
      summarize(torch::empty({0}, torch::kFloat64), torch::empty({0}, torch::kBool)),
      "no value");
  GRADLENS_EXPECT_THROWS_WITH(
      summarize(torch::tensor({0.5, std::nan("")}), torch::tensor({false, false})), "NaN");
  GRADLENS_EXPECT_THROWS_WITH(summarize(torch::tensor({0.5, 0.1}), torch::tensor({false})),
                              "[2]");
}

}  // namespace
}  // namespace gradlens::saliency
