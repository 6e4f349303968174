#include "gradlens/saliency/distribution_metrics.h"

#include "support/support.h"

#include <torch/torch.h>

#include <cmath>

namespace gradlens::saliency {
namespace {

using test::SeededTest;

constexpr double kEps = 2.2204e-16;

torch::Tensor map_2d(std::vector<double> v, int64_t h, int64_t w) {
  return torch::tensor(v, torch::kFloat64).reshape({h, w});
}

class DistributionMetricsTest : public SeededTest {};

TEST_F(DistributionMetricsTest, IdenticalMapsScorePerfectly) {
  const torch::Tensor p = torch::rand({3, 5, 6}, torch::kFloat64) + 0.01;
  const MetricResult c = cc(p, p);
  const MetricResult k = kld(p, p);
  const MetricResult s = sim(p, p);
  ASSERT_EQ(c.values.sizes(), torch::IntArrayRef({3}));
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(c.values[i].item<double>(), 1.0, 1e-12);
    EXPECT_NEAR(k.values[i].item<double>(), 0.0, 1e-12);
    EXPECT_NEAR(s.values[i].item<double>(), 1.0, 1e-12);
  }
  EXPECT_EQ(c.num_degenerate, 0);
  EXPECT_EQ(k.num_degenerate, 0);
  EXPECT_EQ(s.num_degenerate, 0);
  EXPECT_EQ(c.values.dtype(), torch::kFloat64);
  EXPECT_EQ(c.degenerate.dtype(), torch::kBool);
}

TEST_F(DistributionMetricsTest, CcIsInvariantToAffineMapsAndFlipsSign) {
  const torch::Tensor p = torch::rand({7, 9});
  EXPECT_NEAR(cc(p, 2.0 * p + 3.0).values.item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(cc(p, -p).values.item<double>(), -1.0, 1e-6);
}

TEST_F(DistributionMetricsTest, DisjointMapsHandComputed) {
  const torch::Tensor p = map_2d({1, 0, 0, 0}, 2, 2);
  const torch::Tensor g = map_2d({0, 0, 0, 1}, 2, 2);
  EXPECT_DOUBLE_EQ(sim(p, g).values.item<double>(), 0.0);
  // Centred maps (3, -1, -1, -1)/4 and (-1, -1, -1, 3)/4: CC = -1/3.
  EXPECT_NEAR(cc(p, g).values.item<double>(), -1.0 / 3.0, 1e-15);
}

TEST_F(DistributionMetricsTest, SimHandComputed) {
  // Min-max then sum-normalised: (0, 1, 2, 3) / 6 and (3, 2, 1, 0) / 6.
  const torch::Tensor p = map_2d({0, 1, 2, 3}, 1, 4);
  const torch::Tensor g = map_2d({3, 2, 1, 0}, 1, 4);
  EXPECT_NEAR(sim(p, g).values.item<double>(), 1.0 / 3.0, 1e-15);
  // Min-max normalisation makes SIM invariant to an offset of either map.
  EXPECT_NEAR(sim(p + 5.0, g).values.item<double>(), 1.0 / 3.0, 1e-15);
}

TEST_F(DistributionMetricsTest, KldHandComputed) {
  // p -> (1/4, 3/4), g -> (1/2, 1/2): KLD = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3).
  const torch::Tensor p = map_2d({1, 3}, 1, 2);
  const torch::Tensor g = map_2d({1, 1}, 1, 2);
  const double expected = 0.5 * std::log(kEps + 0.5 / (0.25 + kEps)) +
                          0.5 * std::log(kEps + 0.5 / (0.75 + kEps));
  EXPECT_NEAR(kld(p, g).values.item<double>(), expected, 1e-15);
  EXPECT_NEAR(expected, 0.5 * std::log(4.0 / 3.0), 1e-12);
  // A larger eps shifts the value as the formula says.
  const double eps = 0.1;
  const double shifted =
      0.5 * std::log(eps + 0.5 / (0.25 + eps)) + 0.5 * std::log(eps + 0.5 / (0.75 + eps));
  EXPECT_NEAR(kld(p, g, KldOptions{eps}).values.item<double>(), shifted, 1e-15);
}

TEST_F(DistributionMetricsTest, ConstantMapsHaveDocumentedValues) {
  const torch::Tensor g = map_2d({0, 1, 2, 5}, 2, 2);
  const torch::Tensor c = torch::full({2, 2}, 2.0, torch::kFloat64);
  const torch::Tensor zero = torch::zeros({2, 2}, torch::kFloat64);

  // CC: 0, flagged.
  MetricResult r = cc(c, g);
  EXPECT_EQ(r.values.item<double>(), 0.0);
  EXPECT_TRUE(r.degenerate.item<bool>());
  EXPECT_EQ(r.num_degenerate, 1);
  EXPECT_EQ(cc(g, zero).values.item<double>(), 0.0);
  EXPECT_EQ(cc(c, c).values.item<double>(), 0.0);

  // SIM: constant non-zero -> uniform 1/4; g -> (0, 1/5, 2/5, 1) / (8/5).
  const std::vector<double> g_norm{0.0, 0.2 / 1.6, 0.4 / 1.6, 1.0 / 1.6};
  double expected = 0;
  for (double v : g_norm) expected += std::min(0.25, v);
  r = sim(c, g);
  EXPECT_NEAR(r.values.item<double>(), expected, 1e-15);
  EXPECT_TRUE(r.degenerate.item<bool>());
  EXPECT_NEAR(sim(c, c * 3.0).values.item<double>(), 1.0, 1e-15);
  // SIM: an all-zero map stays zero -> 0.
  EXPECT_EQ(sim(zero, g).values.item<double>(), 0.0);
  EXPECT_EQ(sim(zero, zero).values.item<double>(), 0.0);

  // KLD: constant non-zero prediction is the uniform distribution.
  const torch::Tensor gd = g / g.sum();
  const double kl_uniform =
      (gd * torch::log(kEps + gd / (0.25 + kEps))).sum().item<double>();
  r = kld(c, g);
  EXPECT_NEAR(r.values.item<double>(), kl_uniform, 1e-14);
  EXPECT_TRUE(r.degenerate.item<bool>());
  // KLD: all-zero prediction keeps the reference's finite value; all-zero target -> 0.
  const double kl_zero = (gd * torch::log(kEps + gd / kEps)).sum().item<double>();
  EXPECT_NEAR(kld(zero, g).values.item<double>(), kl_zero, 1e-12);
  EXPECT_GT(kl_zero, 20.0);
  EXPECT_EQ(kld(g, zero).values.item<double>(), 0.0);
  EXPECT_TRUE(kld(g, zero).degenerate.item<bool>());
}

TEST_F(DistributionMetricsTest, BatchMatchesSingleMapsAndCountsDegenerate) {
  torch::Tensor p = torch::rand({4, 6, 5}, torch::kFloat32);
  const torch::Tensor g = torch::rand({4, 6, 5}, torch::kFloat32);
  p[2].fill_(0.25);
  for (auto fn : {&sim, &cc}) {
    const MetricResult batch = fn(p, g);
    EXPECT_EQ(batch.num_degenerate, 1);
    EXPECT_TRUE(batch.degenerate[2].item<bool>());
    for (int64_t i = 0; i < 4; ++i) {
      EXPECT_DOUBLE_EQ(batch.values[i].item<double>(), fn(p[i], g[i]).values.item<double>());
    }
  }
  // Single [H, W] maps give [1] results; float32 and float64 inputs agree.
  EXPECT_EQ(kld(p[0], g[0]).values.sizes(), torch::IntArrayRef({1}));
  EXPECT_DOUBLE_EQ(kld(p[0], g[0]).values.item<double>(),
                   kld(p[0].to(torch::kFloat64), g[0].to(torch::kFloat64)).values.item<double>());
}

TEST_F(DistributionMetricsTest, IntegerMapsAreUsedAsValues) {
  const torch::Tensor p = torch::tensor({0, 1, 2, 3}, torch::kInt64).reshape({1, 4});
  const torch::Tensor g = torch::tensor({3, 2, 1, 0}, torch::kInt32).reshape({1, 4});
  EXPECT_NEAR(sim(p, g).values.item<double>(), 1.0 / 3.0, 1e-15);
  EXPECT_NEAR(cc(p, g).values.item<double>(), -1.0, 1e-15);
}

TEST_F(DistributionMetricsTest, EmptyBatchGivesEmptyResult) {
  const MetricResult r = cc(torch::zeros({0, 3, 3}), torch::zeros({0, 3, 3}));
  EXPECT_EQ(r.values.numel(), 0);
  EXPECT_EQ(r.num_degenerate, 0);
}

TEST_F(DistributionMetricsTest, RejectsBadInputs) {
  const torch::Tensor a = torch::rand({2, 4, 4});
  GRADLENS_EXPECT_THROWS_WITH(cc(a, torch::rand({2, 4, 5})), "[2, 4, 4]");
  GRADLENS_EXPECT_THROWS_WITH(cc(a, torch::rand({2, 4, 5})), "[2, 4, 5]");
  GRADLENS_EXPECT_THROWS_WITH(sim(a, torch::rand({4, 4})), "same shape");
  GRADLENS_EXPECT_THROWS_WITH(sim(torch::rand({16}), torch::rand({16})), "[N, H, W] or [H, W]");
  GRADLENS_EXPECT_THROWS_WITH(sim(torch::rand({2, 0, 4}), torch::rand({2, 0, 4})), "empty");
  torch::Tensor nan = a.clone();
  nan[1][2][3] = std::nan("");
  GRADLENS_EXPECT_THROWS_WITH(kld(a, nan), "target of image 1 contains NaN");
  GRADLENS_EXPECT_THROWS_WITH(cc(nan, a), "prediction of image 1");
  GRADLENS_EXPECT_THROWS_WITH(kld(a - 0.5, a), "negative");
  GRADLENS_EXPECT_THROWS_WITH(kld(a, a, KldOptions{0.0}), "eps");
}

}  // namespace
}  // namespace gradlens::saliency
