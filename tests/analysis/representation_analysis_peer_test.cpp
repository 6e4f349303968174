// analyze_representation against the same protocol written with
// scikit-learn 1.2 (tests/python/sk_analyze.py): PCA(svd_solver="full") to
// min(pca_dims, D, N-1) dims, KMeans(k, n_init, random_state=seed),
// GaussianMixture(k, covariance, random_state=seed).fit().predict(), and
// sklearn's ARI/NMI/AMI/silhouette, on the same float32 matrices. Both seed
// k-means++ and the GMM's KMeans start from numpy's RandomState(seed), so the
// partitions themselves must agree, not only the scores.
#include "gradlens/analysis/representation_analysis.h"

#include "analysis/sk_peer.h"
#include "support/support.h"

#include <torch/types.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace gradlens::analysis {
namespace {

struct RaPeerCase {
  int64_t n, d, classes;
  double spread;  // class-mean scale relative to unit noise
  AnalyzeOptions opts;
  std::string normalize, covariance;
};

// Classes with random means (scale `spread`) plus unit Gaussian noise, with a
// per-row scale so that norms vary as gradient norms do.
torch::Tensor ra_peer_data(const RaPeerCase& c, torch::Tensor& labels) {
  labels = torch::arange(c.n, torch::kInt64).remainder(c.classes);
  const auto means = torch::randn({c.classes, c.d}, torch::kFloat64) * c.spread;
  auto x = means.index_select(0, labels) + torch::randn({c.n, c.d}, torch::kFloat64);
  x = x * (0.5 + torch::rand({c.n, 1}, torch::kFloat64));
  return x.to(torch::kFloat32);
}

class RepresentationAnalysisPeer : public test::SeededTest {};

TEST_F(RepresentationAnalysisPeer, MatchesScikitLearnOnTheSameProtocol) {
  if (!test::python_has("sklearn")) GTEST_SKIP() << "python3-sklearn not installed";
  std::vector<RaPeerCase> cases(3);
  // Wider than 50 features, full covariance on the 50 PCA dims.
  cases[0] = {300, 200, 5, 0.35, {}, "none", "full"};
  cases[0].opts.seed = 3;
  // More features than samples, l2 rows, diagonal covariance, 3 GMM inits.
  cases[1] = {120, 500, 4, 0.2, {}, "l2", "diag"};
  cases[1].opts.seed = 7;
  cases[1].opts.normalize = RowNormalization::kL2;
  cases[1].opts.gmm_covariance = cluster::CovarianceType::kDiag;
  cases[1].opts.gmm_n_init = 3;
  // Raw input (no PCA), spherical, k != classes, subsampled silhouette.
  cases[2] = {200, 20, 4, 1.0, {}, "none", "spherical"};
  cases[2].opts.seed = 11;
  cases[2].opts.pca_dims = 0;
  cases[2].opts.k = 5;
  cases[2].opts.kmeans_n_init = 4;
  cases[2].opts.gmm_covariance = cluster::CovarianceType::kSpherical;
  cases[2].opts.silhouette_sample_size = 100;

  test::TempDir dir;
  nlohmann::json cj = nlohmann::json::array();
  std::vector<torch::Tensor> xs, ys;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    torch::Tensor y;
    xs.push_back(ra_peer_data(c, y));
    ys.push_back(y);
    test::save_npy(dir / ("x_" + std::to_string(i) + ".npy"), xs.back());
    test::save_npy(dir / ("labels_" + std::to_string(i) + ".npy"), y);
    cj.push_back({{"k", c.opts.k == 0 ? c.classes : c.opts.k},
                  {"pca_dims", c.opts.pca_dims},
                  {"normalize", c.normalize},
                  {"covariance", c.covariance},
                  {"kmeans_n_init", c.opts.kmeans_n_init},
                  {"gmm_n_init", c.opts.gmm_n_init},
                  {"reg_covar", c.opts.reg_covar},
                  {"seed", c.opts.seed},
                  {"silhouette_sample", c.opts.silhouette_sample_size}});
  }
  {
    std::ofstream f(dir / "cases.json");
    f << cj.dump();
  }
  const auto sk = test::run_peer_script("sk_analyze.py", dir.path().string());
  ASSERT_EQ(sk.size(), cases.size());
  const bool same_draws = test::sklearn_kmeanspp_draws_as_1_2();
  if (!same_draws)
    std::cout << "[ analyze peer ] scikit-learn's k-means++ draws differ from 1.2: seeded partitions not compared\n";

  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    const auto& c = cases[i];
    const auto r = analyze_representation(xs[i], ys[i], c.classes, c.opts);
    const auto& s = sk[i];
    EXPECT_NEAR(r.cosine.cos_sim, s["cos_sim"].get<double>(), 1e-12);
    EXPECT_EQ(r.pca.dims, s["dims"].get<int64_t>());
    const auto ratio = s["ratio"].get<std::vector<double>>();
    ASSERT_EQ(r.pca.explained_variance_ratio.size(), ratio.size());
    for (size_t j = 0; j < ratio.size(); ++j) EXPECT_NEAR(r.pca.explained_variance_ratio[j], ratio[j], 1e-5);
    // PCA scores agree up to each component's sign.
    const auto pca2 = test::load_npy(dir / ("pca2_" + std::to_string(i) + ".npy"));
    for (int64_t col = 0; col < 2; ++col) {
      const auto a = r.pca2.select(1, col).to(torch::kFloat64);
      const auto b = pca2.select(1, col).to(torch::kFloat64);
      const double scale = b.abs().max().item<double>();
      const double diff = std::min((a - b).abs().max().item<double>(), (a + b).abs().max().item<double>());
      EXPECT_LT(diff, 1e-4 * scale) << "pca2 column " << col;
    }
    // The seeded stages (KMeans, the GMM's KMeans start) draw as scikit-learn
    // 1.2-1.3 draw; later versions draw k-means++ differently, so there only
    // the stages without random draws are compared (KMeans and the GMM
    // themselves: tests/cluster/*_peer_test.cpp, from given starts).
    if (!same_draws) continue;
    const std::pair<const ClusteringResult*, std::string> methods[] = {{&r.kmeans, "kmeans"}, {&r.gmm, "gmm"}};
    for (const auto& [m, key] : methods) {
      SCOPED_TRACE(key);
      ASSERT_TRUE(m->error.empty()) << m->error;
      const auto& e = s[key];
      // The same partition (same label numbers, as both seed identically).
      const auto theirs = test::load_npy(dir / (key + "_" + std::to_string(i) + ".npy"));
      EXPECT_TRUE(torch::equal(m->labels, theirs))
          << (m->labels != theirs).sum().item<int64_t>() << " labels differ";
      EXPECT_NEAR(m->ari, e["ari"].get<double>(), 1e-12);
      EXPECT_NEAR(m->nmi, e["nmi"].get<double>(), 1e-12);
      EXPECT_NEAR(m->ami, e["ami"].get<double>(), 1e-10);
      EXPECT_NEAR(m->accuracy, e["accuracy"].get<double>(), 1e-15);
      EXPECT_NEAR(m->silhouette, e["silhouette"].get<double>(), 1e-6);
    }
    const double inertia = s["kmeans"]["inertia"].get<double>();
    EXPECT_NEAR(r.kmeans.inertia, inertia, 1e-6 * inertia);
    EXPECT_NEAR(r.gmm.lower_bound, s["gmm"]["lower_bound"].get<double>(), 1e-4);
    // The scores are not trivial: the classes overlap.
    EXPECT_GT(r.kmeans.ari, 0.05);
    EXPECT_LT(r.kmeans.ari, 0.999);
  }
}

}  // namespace
}  // namespace gradlens::analysis
