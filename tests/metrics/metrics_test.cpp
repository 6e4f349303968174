#include "gradlens/metrics/contingency.h"
#include "gradlens/metrics/information.h"
#include "gradlens/metrics/internal.h"
#include "gradlens/metrics/matching.h"

#include "support/support.h"

#include <torch/types.h>

#include <cmath>

namespace gradlens::metrics {
namespace {

using test::SeededTest;

torch::Tensor L(std::initializer_list<int64_t> v) { return torch::tensor(std::vector<int64_t>(v), torch::kInt64); }

TEST(MetricsTest, PairConfusionAndAriHandCases) {
  // sklearn docstring examples.
  const auto pc = pair_confusion_matrix(L({0, 0, 1, 2}), L({0, 0, 1, 1}));
  EXPECT_TRUE(torch::equal(pc, L({8, 2, 0, 2}).view({2, 2})));
  EXPECT_NEAR(adjusted_rand_score(L({0, 0, 1, 2}), L({0, 0, 1, 1})), 4.0 / 7.0, 1e-15);
  EXPECT_NEAR(adjusted_rand_score(L({0, 0, 1, 1}), L({0, 1, 0, 1})), -0.5, 1e-15);
  EXPECT_EQ(adjusted_rand_score(L({0, 0, 0, 0}), L({0, 1, 2, 3})), 0.0);
  EXPECT_EQ(adjusted_rand_score(L({4}), L({9})), 1.0);
}

TEST(MetricsTest, ContingencyUsesSortedLabelValues) {
  const auto c = contingency_matrix(L({7, -1, 7, 3}), L({10, 10, 20, 20}));
  EXPECT_TRUE(torch::equal(c, L({1, 0, 0, 1, 1, 1}).view({3, 2})));  // rows -1, 3, 7
}

TEST_F(SeededTest, IdenticalAndRenamedLabelingsScoreOne) {
  const auto t = torch::randint(0, 6, {200}, torch::kInt64);
  const auto renamed = t * -13 + 1000;  // a bijection of label values
  EXPECT_DOUBLE_EQ(adjusted_rand_score(t, renamed), 1.0);
  for (auto m : {AverageMethod::kArithmetic, AverageMethod::kGeometric, AverageMethod::kMin, AverageMethod::kMax}) {
    EXPECT_NEAR(normalized_mutual_info_score(t, renamed, m), 1.0, 1e-12);
    EXPECT_NEAR(adjusted_mutual_info_score(t, renamed, m), 1.0, 1e-12);
  }
  const auto hcv = homogeneity_completeness_v_measure(t, renamed);
  EXPECT_NEAR(hcv.homogeneity, 1.0, 1e-12);
  EXPECT_NEAR(hcv.completeness, 1.0, 1e-12);
  EXPECT_NEAR(hcv.v_measure, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(cluster_accuracy(t, renamed).accuracy, 1.0);
  EXPECT_NEAR(mutual_info_score(t, renamed), entropy(t), 1e-12);
  // Renaming the clusters of any labeling changes no score.
  const auto p = torch::randint(0, 4, {200}, torch::kInt64);
  const auto p2 = (3 - p) * 5;
  EXPECT_DOUBLE_EQ(adjusted_rand_score(t, p), adjusted_rand_score(t, p2));
  EXPECT_NEAR(adjusted_mutual_info_score(t, p), adjusted_mutual_info_score(t, p2), 1e-14);
  EXPECT_NEAR(normalized_mutual_info_score(t, p), normalized_mutual_info_score(p, t), 1e-14);  // symmetric
  EXPECT_DOUBLE_EQ(cluster_accuracy(t, p).accuracy, cluster_accuracy(t, p2).accuracy);
}

TEST(MetricsTest, InformationClosedForms) {
  EXPECT_NEAR(entropy(L({0, 0, 1, 1})), std::log(2.0), 1e-15);
  EXPECT_EQ(entropy(L({5, 5, 5})), 0.0);
  EXPECT_NEAR(mutual_info_score(L({0, 0, 1, 1}), L({3, 3, 9, 9})), std::log(2.0), 1e-15);
  EXPECT_EQ(mutual_info_score(L({0, 0, 1, 1}), L({0, 1, 0, 1})), 0.0);
  EXPECT_EQ(normalized_mutual_info_score(L({1, 1}), L({2, 2})), 1.0);
  EXPECT_EQ(normalized_mutual_info_score(L({0, 0, 1, 1}), L({0, 1, 0, 1})), 0.0);
  // One cluster: homogeneity 0 (MI 0, H(true) > 0), completeness 1.
  const auto hcv = homogeneity_completeness_v_measure(L({0, 0, 1, 1}), L({4, 4, 4, 4}));
  EXPECT_EQ(hcv.homogeneity, 0.0);
  EXPECT_EQ(hcv.completeness, 1.0);
  EXPECT_EQ(hcv.v_measure, 0.0);
  EXPECT_EQ(expected_mutual_information(L({0, 0, 1}), L({1, 1, 1})), 0.0);
}

TEST(MetricsTest, InternalCriteriaHandComputed) {
  const auto x = torch::tensor({0., 1., 10., 11.}).view({4, 1});
  const auto lab = L({3, 3, -1, -1});
  const auto s = silhouette_samples(x, lab);
  EXPECT_NEAR(s[0].item<double>(), 9.5 / 10.5, 1e-12);
  EXPECT_NEAR(s[1].item<double>(), 8.5 / 9.5, 1e-12);
  EXPECT_NEAR(s[2].item<double>(), 8.5 / 9.5, 1e-12);
  EXPECT_NEAR(s[3].item<double>(), 9.5 / 10.5, 1e-12);
  EXPECT_NEAR(silhouette_score(x, lab), (9.5 / 10.5 + 8.5 / 9.5) / 2, 1e-12);
  EXPECT_NEAR(calinski_harabasz_score(x, lab), 200.0, 1e-10);
  EXPECT_NEAR(davies_bouldin_score(x, lab), 0.1, 1e-12);
  // A singleton scores 0; chunking does not change the result.
  const auto x3 = torch::tensor({0., 1., 5.}).view({3, 1});
  EXPECT_EQ(silhouette_samples(x3, L({0, 0, 1}))[2].item<double>(), 0.0);
  SilhouetteOptions o;
  o.chunk_rows = 1;
  EXPECT_TRUE(torch::allclose(silhouette_samples(x, lab, o), s, 0, 1e-14));
  // Cosine: two opposite directions: a = 0, b = 2 -> 1 for everybody.
  const auto xc = torch::tensor({1., 0., 2., 0., -1., 0., -3., 0.}).view({4, 2});
  o.metric = SilhouetteMetric::kCosine;
  EXPECT_NEAR(silhouette_score(xc, L({0, 0, 1, 1}), o), 1.0, 1e-12);
}

TEST(MetricsTest, SilhouetteFloat32ProductsEqualFloat64) {
  // float32 data, N >= 4096: float32 products of the centred rows, and every
  // pair with |x_i - x_j|^2 < 5% of |x_i|^2 + |x_j|^2 summed again in
  // float64. A common offset of 40 and 300 near-duplicates of one row (only
  // 1e-3 apart: all re-checked) must not matter.
  torch::manual_seed(21);
  const int64_t n = 5000, d = 40;
  const auto labels = torch::randint(0, 6, {n}, torch::kInt64);
  auto x64 = torch::randn({6, d}, torch::kFloat64).index_select(0, labels) * 2 + torch::randn({n, d}, torch::kFloat64);
  x64.slice(0, 0, 300).copy_(x64[0] + 1e-3 * torch::randn({300, d}, torch::kFloat64));
  const auto x = (x64 + 40).to(torch::kFloat32);
  const auto fast = silhouette_samples(x, labels);
  SilhouetteOptions exact;
  exact.float64_products = true;
  const auto slow = silhouette_samples(x, labels, exact);
  const auto ref = silhouette_samples(x.to(torch::kFloat64), labels);
  EXPECT_LT(test::max_abs_diff(slow, ref), 1e-12);
  EXPECT_GT(test::max_abs_diff(fast, slow), 0.0);  // the float32 route was taken
  EXPECT_LT(test::max_abs_diff(fast, ref), 1e-7);
  EXPECT_NEAR(fast.mean().item<double>(), ref.mean().item<double>(), 1e-9);
  // Tight, well-separated clusters (centres ~ N(0, 10^2), unit spread, as
  // sklearn's make_blobs): nearly every same-cluster pair would need a
  // re-check, so those tiles are done in float64 whole.
  const auto tight_labels = torch::randint(0, 5, {n}, torch::kInt64);
  const auto tight = (torch::randn({5, d}, torch::kFloat64).index_select(0, tight_labels) * 10 +
                      torch::randn({n, d}, torch::kFloat64))
                         .to(torch::kFloat32);
  const auto tight_ref = silhouette_samples(tight.to(torch::kFloat64), tight_labels);
  EXPECT_LT(test::max_abs_diff(silhouette_samples(tight, tight_labels), tight_ref), 1e-7);
  std::cout << "[ silhouette ] float32 products vs float64: max |diff| " << test::max_abs_diff(fast, ref)
            << ", score diff " << std::abs(fast.mean().item<double>() - ref.mean().item<double>()) << "\n";
}

TEST(MetricsTest, HungarianHandCases) {
  const auto c = torch::tensor({4., 1., 3., 2., 0., 5., 3., 2., 2.}).view({3, 3});
  const Assignment a = linear_sum_assignment(c);
  EXPECT_DOUBLE_EQ(a.total, 5.0);
  EXPECT_TRUE(torch::equal(a.cols, L({1, 0, 2})));
  EXPECT_DOUBLE_EQ(linear_sum_assignment(c, true).total, 11.0);  // 4 + 5 + 2
  // Rectangular, both orientations.
  const auto r = torch::tensor({1., 9., 9., 9., 9., 2.}).view({2, 3});
  const Assignment ar = linear_sum_assignment(r);
  EXPECT_DOUBLE_EQ(ar.total, 3.0);
  EXPECT_TRUE(torch::equal(ar.cols, L({0, 2})));
  const Assignment at = linear_sum_assignment(r.t());
  EXPECT_DOUBLE_EQ(at.total, 3.0);
  EXPECT_TRUE(torch::equal(at.rows, L({0, 2})));
  EXPECT_TRUE(torch::equal(at.cols, L({0, 1})));
  EXPECT_EQ(linear_sum_assignment(torch::zeros({0, 3})).rows.numel(), 0);
}

TEST(MetricsTest, ClusterAccuracyHandCase) {
  const auto r = cluster_accuracy(L({0, 0, 1, 1, 2, 2}), L({5, 5, 7, 7, 7, 9}));
  EXPECT_EQ(r.correct, 5);
  EXPECT_NEAR(r.accuracy, 5.0 / 6.0, 1e-15);
  // More clusters than classes: only one cluster per class counts.
  EXPECT_NEAR(cluster_accuracy(L({0, 0, 0, 0}), L({1, 1, 2, 3})).accuracy, 0.5, 1e-15);
}

TEST(MetricsTest, Errors) {
  GRADLENS_EXPECT_THROWS_WITH(adjusted_rand_score(L({0, 1}), L({0, 1, 2})), "labels_pred has 3");
  GRADLENS_EXPECT_THROWS_WITH(adjusted_rand_score(torch::zeros({0}, torch::kInt64), torch::zeros({0}, torch::kInt64)),
                              "empty");
  GRADLENS_EXPECT_THROWS_WITH(normalized_mutual_info_score(torch::zeros({3}), L({0, 1, 2})), "integer");
  const auto x = torch::randn({5, 2});
  GRADLENS_EXPECT_THROWS_WITH(silhouette_score(x, L({0, 0, 0, 0, 0})), "number of distinct labels is 1");
  GRADLENS_EXPECT_THROWS_WITH(silhouette_score(x, L({0, 1, 2, 3, 4})), "number of distinct labels is 5");
  GRADLENS_EXPECT_THROWS_WITH(calinski_harabasz_score(x, L({0, 1})), "2 labels for 5 rows");
  auto bad = x.clone();
  bad[3][0] = INFINITY;
  GRADLENS_EXPECT_THROWS_WITH(davies_bouldin_score(bad, L({0, 0, 1, 1, 1})), "row 3");
  GRADLENS_EXPECT_THROWS_WITH(silhouette_score(torch::zeros({5, 0}), L({0, 0, 1, 1, 1})), "empty");
  GRADLENS_EXPECT_THROWS_WITH(linear_sum_assignment(torch::tensor({std::nan(""), 1.0}).view({1, 2})), "NaN");
}

}  // namespace
}  // namespace gradlens::metrics
