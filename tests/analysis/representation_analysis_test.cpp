#include "gradlens/analysis/representation_analysis.h"

#include "support/support.h"

#include <torch/types.h>

#include <cmath>
#include <string>
#include <vector>

namespace gradlens::analysis {
namespace {

using test::SeededTest;

// Three tight, far-apart blobs in 5-D: 20 points each around 100 e_c, labels
// 0, 1, 2 in blocks (float64).
torch::Tensor ra_test_blobs(torch::Tensor& labels) {
  auto x = torch::randn({60, 5}, torch::kFloat64) * 0.5;
  labels = torch::arange(60, torch::kInt64).div(20, "floor");
  for (int64_t i = 0; i < 60; ++i) x[i][labels[i].item<int64_t>()] += 100.0;
  return x;
}

// Mean silhouette by the definition, pair by pair (Euclidean).
double ra_test_silhouette(const torch::Tensor& x, const torch::Tensor& labels) {
  const int64_t n = x.size(0);
  const auto d = torch::cdist(x.to(torch::kFloat64), x.to(torch::kFloat64));
  const int64_t k = labels.max().item<int64_t>() + 1;
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> sum(k, 0.0), cnt(k, 0.0);
    for (int64_t j = 0; j < n; ++j) {
      if (j == i) continue;
      sum[labels[j].item<int64_t>()] += d[i][j].item<double>();
      cnt[labels[j].item<int64_t>()] += 1;
    }
    const int64_t own = labels[i].item<int64_t>();
    if (cnt[own] == 0) continue;  // singleton: 0
    const double a = sum[own] / cnt[own];
    double b = INFINITY;
    for (int64_t c = 0; c < k; ++c)
      if (c != own && cnt[c] > 0) b = std::min(b, sum[c] / cnt[c]);
    total += (b - a) / std::max(a, b);
  }
  return total / static_cast<double>(n);
}

TEST_F(SeededTest, WellSeparatedBlobsAreFoundExactly) {
  torch::Tensor labels;
  const auto x = ra_test_blobs(labels);
  AnalyzeOptions opts;
  opts.seed = 3;
  const auto r = analyze_representation(x, labels, 3, opts);
  EXPECT_EQ(r.n, 60);
  EXPECT_EQ(r.d, 5);
  EXPECT_EQ(r.k, 3);
  // PCA to min(50, D, N-1) = 5 dims: a rotation, so distances are those of x.
  EXPECT_EQ(r.pca.dims, 5);
  EXPECT_EQ(r.clustering_input, "pca5");
  EXPECT_EQ(r.clustering_dims, 5);
  ASSERT_EQ(r.pca.explained_variance_ratio.size(), 5u);
  EXPECT_NEAR(r.pca.cumulative_ratio, 1.0, 1e-12);
  // Two directions separate three blobs: the first two ratios hold ~all.
  EXPECT_GT(r.pca.explained_variance_ratio[0] + r.pca.explained_variance_ratio[1], 0.999);
  const double sil = ra_test_silhouette(x, labels);
  EXPECT_GT(sil, 0.95);
  for (const auto* c : {&r.kmeans, &r.gmm}) {
    SCOPED_TRACE(c->method);
    EXPECT_TRUE(c->error.empty()) << c->error;
    ASSERT_TRUE(c->labels.defined());
    EXPECT_EQ(c->labels.sizes(), torch::IntArrayRef({60}));
    EXPECT_EQ(c->labels.scalar_type(), torch::kInt64);
    EXPECT_EQ(c->clusters_found, 3);
    EXPECT_DOUBLE_EQ(c->ari, 1.0);
    EXPECT_NEAR(c->nmi, 1.0, 1e-12);
    EXPECT_NEAR(c->ami, 1.0, 1e-12);
    EXPECT_DOUBLE_EQ(c->accuracy, 1.0);
    EXPECT_NEAR(c->silhouette, sil, 1e-9);
    EXPECT_TRUE(c->converged);
    EXPECT_GE(c->n_iter, 1);
  }
  // Inertia: the within-blob sum of squares (the centres are the blob means).
  double ss = 0;
  for (int64_t c = 0; c < 3; ++c) {
    const auto b = x.slice(0, 20 * c, 20 * c + 20);
    ss += (b - b.mean(0)).pow(2).sum().item<double>();
  }
  EXPECT_NEAR(r.kmeans.inertia, ss, 1e-8 * ss);
  EXPECT_TRUE(std::isnan(r.kmeans.lower_bound));
  EXPECT_TRUE(std::isfinite(r.gmm.lower_bound));
  EXPECT_TRUE(std::isnan(r.gmm.inertia));
  EXPECT_EQ(r.pca2.sizes(), torch::IntArrayRef({60, 2}));
  EXPECT_EQ(r.pca2.scalar_type(), torch::kFloat32);
}

TEST(RepresentationAnalysis, CosSimIsOnTheRawRowsWithZeroVectors) {
  // class 0: (1,0) (2,0): cos 1. class 1: (0,1) (1,1) (0,0): pairs 1/sqrt2, 0, 0.
  const auto x = torch::tensor({1., 0., 2., 0., 0., 1., 1., 1., 0., 0.}).view({5, 2});
  const auto labels = torch::tensor({0, 0, 1, 1, 1}, torch::kInt64);
  const double want = (1.0 + 1.0 / (3.0 * std::sqrt(2.0))) / 2.0;
  for (auto norm : {RowNormalization::kNone, RowNormalization::kL2}) {
    for (int64_t dims : {0, 1, 50}) {
      AnalyzeOptions opts;
      opts.normalize = norm;
      opts.pca_dims = dims;
      const auto r = analyze_representation(x, labels, 2, opts);
      EXPECT_NEAR(r.cosine.cos_sim, want, 1e-15);
      EXPECT_EQ(r.cosine.zero_vectors, 1);
      EXPECT_NEAR(r.cosine.within[0].item<double>(), 1.0, 1e-15);
      EXPECT_NEAR(r.cosine.within[1].item<double>(), 1.0 / (3.0 * std::sqrt(2.0)), 1e-15);
    }
  }
}

TEST_F(SeededTest, PcaDimsAreClippedToDAndNMinusOne) {
  const auto x = torch::randn({8, 30});
  const auto labels = torch::tensor({0, 0, 0, 0, 1, 1, 1, 1}, torch::kInt64);
  AnalyzeOptions opts;
  auto r = analyze_representation(x, labels, 2, opts);
  EXPECT_EQ(r.pca.dims, 7);  // N - 1
  EXPECT_EQ(r.clustering_input, "pca7");
  EXPECT_EQ(r.clustering_dims, 7);
  EXPECT_EQ(r.pca.explained_variance_ratio.size(), 8u);  // min(10, N, D)
  // Centred, 8 rows span 7 dimensions: 7 components hold all the variance.
  EXPECT_NEAR(r.pca.cumulative_ratio, 1.0, 1e-5);
  EXPECT_NEAR(r.pca.explained_variance_ratio[7], 0.0, 1e-6);

  const auto narrow = torch::randn({40, 3});
  const auto l40 = torch::arange(40, torch::kInt64).remainder(2);
  r = analyze_representation(narrow, l40, 2, opts);
  EXPECT_EQ(r.pca.dims, 3);  // D
  EXPECT_EQ(r.pca.explained_variance_ratio.size(), 3u);

  opts.pca_dims = 2;
  opts.normalize = RowNormalization::kL2;
  r = analyze_representation(narrow, l40, 2, opts);
  EXPECT_EQ(r.clustering_input, "l2+pca2");
  EXPECT_EQ(r.clustering_dims, 2);
  const double two = r.pca.explained_variance_ratio[0] + r.pca.explained_variance_ratio[1];
  EXPECT_NEAR(r.pca.cumulative_ratio, two, 1e-12);
  EXPECT_LT(r.pca.cumulative_ratio, 1.0);

  opts.pca_dims = 0;
  opts.normalize = RowNormalization::kNone;
  r = analyze_representation(x, labels, 2, opts);
  EXPECT_EQ(r.clustering_input, "raw");
  EXPECT_EQ(r.pca.dims, 0);
  EXPECT_EQ(r.clustering_dims, 30);
  EXPECT_DOUBLE_EQ(r.pca.cumulative_ratio, 1.0);
}

TEST_F(SeededTest, Pca2HoldsTheScoresAlongTheMainDirection) {
  // Points on the line t (3, 4) / 5 plus tiny noise: the first score is
  // +-(t - mean t), the second ~0.
  const auto t = torch::linspace(-5, 5, 30, torch::kFloat64);
  const auto dir = torch::tensor({0.6, 0.8}, torch::kFloat64);
  const auto x = torch::outer(t, dir) + 1e-6 * torch::randn({30, 2}, torch::kFloat64) + 7.0;
  const auto labels = (t > 0).to(torch::kInt64);
  const auto r = analyze_representation(x, labels, 2, {});
  const auto s0 = r.pca2.select(1, 0).to(torch::kFloat64);
  const double sign = s0[29].item<double>() > 0 ? 1.0 : -1.0;
  EXPECT_LT((s0 * sign - t).abs().max().item<double>(), 1e-5);
  EXPECT_LT(r.pca2.select(1, 1).abs().max().item<double>(), 1e-5);
  EXPECT_NEAR(r.pca.explained_variance_ratio[0], 1.0, 1e-10);
}

TEST(RepresentationAnalysis, FailedGmmIsRecordedAndKMeansStillRuns) {
  // Two groups of identical rows: every component covariance is exactly 0,
  // so with reg_covar = 0 the GMM's Cholesky fails.
  auto x = torch::zeros({10, 3}, torch::kFloat64);
  x.slice(0, 5, 10).fill_(10.0);
  const auto labels = torch::tensor({0, 0, 0, 0, 0, 1, 1, 1, 1, 1}, torch::kInt64);
  AnalyzeOptions opts;
  opts.pca_dims = 0;
  opts.reg_covar = 0.0;
  RepresentationAnalysis r;
  ASSERT_NO_THROW(r = analyze_representation(x, labels, 2, opts));
  EXPECT_FALSE(r.gmm.error.empty());
  EXPECT_NE(r.gmm.error.find("reg_covar"), std::string::npos) << r.gmm.error;
  EXPECT_EQ(r.gmm.method, "gmm");
  EXPECT_FALSE(r.gmm.labels.defined());
  EXPECT_TRUE(std::isnan(r.gmm.ari));
  EXPECT_TRUE(std::isnan(r.gmm.silhouette));
  EXPECT_TRUE(r.kmeans.error.empty()) << r.kmeans.error;
  EXPECT_DOUBLE_EQ(r.kmeans.ari, 1.0);
  EXPECT_DOUBLE_EQ(r.kmeans.silhouette, 1.0);  // a = 0 inside each group
  EXPECT_DOUBLE_EQ(r.kmeans.inertia, 0.0);
  // The default reg_covar regularises the same data: no error.
  opts.reg_covar = 1e-6;
  r = analyze_representation(x, labels, 2, opts);
  EXPECT_TRUE(r.gmm.error.empty()) << r.gmm.error;
  EXPECT_DOUBLE_EQ(r.gmm.ari, 1.0);
}

TEST_F(SeededTest, SameSeedSameResultAndKOverride) {
  torch::Tensor labels;
  auto x = ra_test_blobs(labels);
  x = x + 30 * torch::randn_like(x);  // overlapping: the seed matters
  AnalyzeOptions opts;
  opts.seed = 11;
  opts.k = 4;
  const auto a = analyze_representation(x.to(torch::kFloat32), labels, 3, opts);
  const auto b = analyze_representation(x.to(torch::kFloat32), labels, 3, opts);
  EXPECT_EQ(a.k, 4);
  EXPECT_TRUE(torch::equal(a.kmeans.labels, b.kmeans.labels));
  EXPECT_TRUE(torch::equal(a.gmm.labels, b.gmm.labels));
  EXPECT_EQ(a.kmeans.ari, b.kmeans.ari);
  EXPECT_EQ(a.kmeans.labels.max().item<int64_t>(), 3);
  EXPECT_LE(a.kmeans.accuracy, 1.0);
}

TEST_F(SeededTest, SubsampledSilhouetteIsCloseToTheExactOne) {
  torch::Tensor labels;
  const auto x = ra_test_blobs(labels);
  AnalyzeOptions opts;
  opts.silhouette_sample_size = 30;
  const auto r = analyze_representation(x, labels, 3, opts);
  const double exact = ra_test_silhouette(x, labels);
  EXPECT_NEAR(r.kmeans.silhouette, exact, 0.01);
  EXPECT_NE(r.kmeans.silhouette, exact);  // a subset, not the exact value
}

TEST(RepresentationAnalysis, ProgressHasFourSteps) {
  const auto x = torch::tensor({0., 0., 0.1, 0., 5., 5., 5.1, 5.}).view({4, 2});
  const auto labels = torch::tensor({0, 0, 1, 1}, torch::kInt64);
  std::vector<std::string> notes;
  bool ended = false;
  analyze_representation(x, labels, 2, {}, [&](const core::ProgressEvent& ev) {
    EXPECT_EQ(ev.stage, "analyze");
    EXPECT_EQ(ev.total, 4);
    notes.push_back(ev.note);
    ended = ev.stage_end;
  });
  EXPECT_EQ(notes, (std::vector<std::string>{"cosine", "pca", "kmeans", "gmm"}));
  EXPECT_TRUE(ended);
}

TEST(RepresentationAnalysis, BadInputsAreClearErrors) {
  auto x = torch::randn({6, 4});
  const auto labels = torch::tensor({0, 0, 0, 1, 1, 1}, torch::kInt64);
  auto bad = x.clone();
  bad[4][2] = NAN;
  GRADLENS_EXPECT_THROWS_WITH(analyze_representation(bad, labels, 2, {}), "row 4");
  bad = x.clone();
  bad[1][0] = INFINITY;
  GRADLENS_EXPECT_THROWS_WITH(analyze_representation(bad, labels, 2, {}), "row 1");
  AnalyzeOptions big;
  big.k = 7;
  GRADLENS_EXPECT_THROWS_WITH(analyze_representation(x, labels, 2, big), "--k: 7 clusters for 6 samples");
  GRADLENS_EXPECT_THROWS_WITH(analyze_representation(x, labels.slice(0, 0, 5), 2, {}), "5 labels for 6 rows");
  GRADLENS_EXPECT_THROWS_WITH(analyze_representation(x, labels, 1, {}), "[0, 1)");
  AnalyzeOptions neg;
  neg.pca_dims = -1;
  GRADLENS_EXPECT_THROWS_WITH(analyze_representation(x, labels, 2, neg), "--pca-dims");
  AnalyzeOptions seed;
  seed.seed = 1ull << 33;
  GRADLENS_EXPECT_THROWS_WITH(analyze_representation(x, labels, 2, seed), "--seed");
  GRADLENS_EXPECT_THROWS_WITH(analyze_representation(x.slice(0, 0, 1), labels.slice(0, 0, 1), 2, {}),
                              "at least 2 samples");
  GRADLENS_EXPECT_THROWS_WITH(parse_row_normalization("l3"), "--normalize");
  GRADLENS_EXPECT_THROWS_WITH(parse_covariance_type("round"), "--gmm-covariance");
  EXPECT_EQ(parse_covariance_type("tied"), cluster::CovarianceType::kTied);
  EXPECT_EQ(covariance_type_name(cluster::CovarianceType::kSpherical), "spherical");
}

}  // namespace
}  // namespace gradlens::analysis
