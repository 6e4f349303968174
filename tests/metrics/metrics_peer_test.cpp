// Cross-checks of gradlens::metrics against scikit-learn 1.2 / scipy run by
// tests/python/sk_metrics.py and sk_lsa.py on the same inputs.
#include "gradlens/metrics/contingency.h"
#include "gradlens/metrics/information.h"
#include "gradlens/metrics/internal.h"
#include "gradlens/metrics/matching.h"

#include "analysis/sk_peer.h"
#include "support/support.h"

#include <torch/types.h>

namespace gradlens::metrics {
namespace {

using test::SeededTest;
class MetricsPeer : public SeededTest {};

struct Case {
  torch::Tensor t, p, x;  // x undefined: no internal criteria
};

std::vector<Case> make_cases() {
  std::vector<Case> cases;
  auto blobs = [](const torch::Tensor& labels, int64_t d, double spread) {
    const auto centres = torch::randn({labels.max().item<int64_t>() + 1, d}, torch::kFloat64) * 3;
    return centres.index_select(0, labels) + spread * torch::randn({labels.size(0), d}, torch::kFloat64);
  };
  {  // independent labelings with arbitrary label values
    const auto t = torch::tensor({3, 8, 100, -5}, torch::kInt64).index_select(0, torch::randint(0, 4, {300}).to(torch::kInt64));
    const auto pc = torch::randint(0, 5, {300}, torch::kInt64);
    cases.push_back({t, pc * 2, blobs(pc, 5, 1.0)});
  }
  {  // 20% noise on 10 classes
    const auto t = torch::randint(0, 10, {500}, torch::kInt64);
    auto p = t.clone();
    const auto flip = torch::rand({500}) < 0.2;
    p.masked_scatter_(flip, torch::randint(0, 10, {500}, torch::kInt64).masked_select(flip));
    cases.push_back({t, p, blobs(p, 8, 2.0)});
  }
  {  // many small clusters plus a singleton
    const auto t = torch::randint(0, 3, {200}, torch::kInt64);
    auto p = torch::randint(0, 50, {200}, torch::kInt64);
    p[0] = 999;
    cases.push_back({t, p, blobs(torch::where(p == 999, torch::full_like(p, 50), p), 4, 1.5)});
  }
  {  // a single true class
    const auto p = torch::randint(0, 3, {60}, torch::kInt64);
    cases.push_back({torch::full({60}, 7, torch::kInt64), p, blobs(p, 3, 0.5)});
  }
  {  // both single-class
    cases.push_back({torch::full({10}, 1, torch::kInt64), torch::full({10}, 4, torch::kInt64), {}});
  }
  {  // float32, 4500 rows, all features near +20: the euclidean silhouette
     // takes float32 products with float64 re-checks (N >= 4096)
    const auto t = torch::randint(0, 7, {4500}, torch::kInt64);
    auto p = t.clone();
    const auto flip = torch::rand({4500}) < 0.1;
    p.masked_scatter_(flip, torch::randint(0, 7, {4500}, torch::kInt64).masked_select(flip));
    cases.push_back({t, p, (blobs(p, 24, 1.5) + 20).to(torch::kFloat32)});
  }
  {  // larger, 12 x 9
    const auto t = torch::randint(0, 12, {3000}, torch::kInt64);
    const auto p = (t + torch::randint(0, 3, {3000}, torch::kInt64)) % 9;
    cases.push_back({t, p, {}});
  }
  return cases;
}

TEST_F(MetricsPeer, MetricsMatchScikitLearn) {
  if (!test::python_has("sklearn")) GTEST_SKIP() << "scikit-learn is not installed for /usr/bin/python3";
  const auto cases = make_cases();
  test::TempDir dir;
  for (size_t i = 0; i < cases.size(); ++i) {
    test::save_npy(dir / ("true_" + std::to_string(i) + ".npy"), cases[i].t);
    test::save_npy(dir / ("pred_" + std::to_string(i) + ".npy"), cases[i].p);
    if (cases[i].x.defined()) test::save_npy(dir / ("x_" + std::to_string(i) + ".npy"), cases[i].x);
  }
  const auto ref = test::run_peer_script("sk_metrics.py", dir.path().string() + " " + std::to_string(cases.size()));
  ASSERT_EQ(ref.size(), cases.size());
  double worst = 0, worst_sil = 0;
  auto near = [&worst](double ours, double theirs, const std::string& what, size_t i) {
    worst = std::max(worst, std::abs(ours - theirs));
    EXPECT_NEAR(ours, theirs, 1e-9) << what << " case " << i;
  };
  const std::pair<const char*, AverageMethod> methods[] = {{"arithmetic", AverageMethod::kArithmetic},
                                                           {"geometric", AverageMethod::kGeometric},
                                                           {"min", AverageMethod::kMin},
                                                           {"max", AverageMethod::kMax}};
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto& r = ref[i];
    near(adjusted_rand_score(c.t, c.p), r["ari"], "ari", i);
    const auto pc = pair_confusion_matrix(c.t, c.p);
    for (int k = 0; k < 4; ++k) EXPECT_EQ(pc.view(-1)[k].item<int64_t>(), r["pair"][k].get<int64_t>());
    const auto cm = contingency_matrix(c.t, c.p);
    ASSERT_EQ(cm.size(0), static_cast<int64_t>(r["contingency"].size()));
    for (int64_t a = 0; a < cm.size(0); ++a)
      for (int64_t b = 0; b < cm.size(1); ++b) EXPECT_EQ(cm[a][b].item<int64_t>(), r["contingency"][a][b].get<int64_t>());
    near(mutual_info_score(c.t, c.p), r["mi"], "mi", i);
    near(expected_mutual_information(c.t, c.p), r["emi"], "emi", i);
    near(entropy(c.t), r["entropy_true"], "entropy", i);
    for (const auto& [name, m] : methods) {
      near(normalized_mutual_info_score(c.t, c.p, m), r[std::string("nmi_") + name], std::string("nmi_") + name, i);
      near(adjusted_mutual_info_score(c.t, c.p, m), r[std::string("ami_") + name], std::string("ami_") + name, i);
    }
    const auto hcv = homogeneity_completeness_v_measure(c.t, c.p);
    near(hcv.homogeneity, r["hcv"][0], "homogeneity", i);
    near(hcv.completeness, r["hcv"][1], "completeness", i);
    near(hcv.v_measure, r["hcv"][2], "v_measure", i);
    near(homogeneity_completeness_v_measure(c.t, c.p, 2.0).v_measure, r["hcv_beta2"][2], "v_measure beta 2", i);
    near(cluster_accuracy(c.t, c.p).accuracy, r["acc"], "accuracy", i);
    if (!c.x.defined()) continue;
    SilhouetteOptions o;
    const auto samples = silhouette_samples(c.x, c.p, o);
    const auto ref_samples = torch::tensor(r["sil_samples"].get<std::vector<double>>(), torch::kFloat64);
    worst_sil = std::max(worst_sil, test::max_abs_diff(samples, ref_samples));
    EXPECT_LT(test::max_abs_diff(samples, ref_samples), 1e-6) << "silhouette_samples case " << i;
    const double se = silhouette_score(c.x, c.p, o);
    worst_sil = std::max(worst_sil, std::abs(se - r["sil_euclid"].get<double>()));
    EXPECT_NEAR(se, r["sil_euclid"].get<double>(), 1e-6) << i;
    o.chunk_rows = 17;
    EXPECT_NEAR(silhouette_score(c.x, c.p, o), se, 1e-12) << i;
    o.metric = SilhouetteMetric::kCosine;
    const double sc = silhouette_score(c.x, c.p, o);
    worst_sil = std::max(worst_sil, std::abs(sc - r["sil_cosine"].get<double>()));
    EXPECT_NEAR(sc, r["sil_cosine"].get<double>(), 1e-6) << i;
    SilhouetteOptions sampled;
    sampled.sample_size = c.x.size(0) / 2;
    sampled.seed = 7;
    const double ss = silhouette_score(c.x, c.p, sampled);
    worst_sil = std::max(worst_sil, std::abs(ss - r["sil_sampled"].get<double>()));
    EXPECT_NEAR(ss, r["sil_sampled"].get<double>(), 1e-6) << "sampled silhouette case " << i;
    // float32 data: scikit-learn computes CH and DB in float32 (float32
    // means and distances), we in float64; so against it 1e-5 relative, and
    // our float32 result must equal our float64 one of the same numbers.
    const bool f32 = c.x.scalar_type() == torch::kFloat32;
    const double sk_tol = f32 ? 1e-5 : 1e-9;
    const double ch = calinski_harabasz_score(c.x, c.p);
    EXPECT_NEAR(ch, r["ch"].get<double>(), sk_tol * std::max(1.0, std::abs(ch))) << "calinski_harabasz case " << i;
    // Relative: sklearn's |x|^2 - 2 x.c + |c|^2 distances put ~1e-8 of rounding
    // noise on a singleton's distance to its own centroid (ours is exactly 0).
    const double db = davies_bouldin_score(c.x, c.p);
    EXPECT_NEAR(db, r["db"].get<double>(), sk_tol * std::max(1.0, std::abs(db))) << "davies_bouldin case " << i;
    if (f32) {
      const auto x64 = c.x.to(torch::kFloat64);
      EXPECT_NEAR(ch, calinski_harabasz_score(x64, c.p), 1e-12 * ch) << "float32 vs float64 CH, case " << i;
      EXPECT_NEAR(db, davies_bouldin_score(x64, c.p), 1e-12 * db) << "float32 vs float64 DB, case " << i;
    }
  }
  RecordProperty("max_abs_dev_label_metrics", std::to_string(worst));
  RecordProperty("max_abs_dev_silhouette", std::to_string(worst_sil));
  std::cout << "[ metrics peer ] max |ours - sklearn|: label/CH/DB metrics " << worst << ", silhouette " << worst_sil
            << "\n";
}

TEST_F(MetricsPeer, HungarianMatchesScipy) {
  if (!test::python_has("scipy")) GTEST_SKIP() << "scipy is not installed for /usr/bin/python3";
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{5, 5}, {4, 7}, {8, 3}, {30, 30}, {1, 6}, {25, 40}};
  test::TempDir dir;
  std::vector<torch::Tensor> costs;
  for (size_t i = 0; i < shapes.size(); ++i) {
    auto c = torch::randn({shapes[i].first, shapes[i].second}, torch::kFloat64);
    if (i % 2 == 0) c = (c * 3).round();  // integer costs with many ties
    costs.push_back(c);
    test::save_npy(dir / ("cost_" + std::to_string(i) + ".npy"), c);
  }
  const auto ref = test::run_peer_script("sk_lsa.py", dir.path().string() + " " + std::to_string(costs.size()));
  for (size_t i = 0; i < costs.size(); ++i) {
    const Assignment mn = linear_sum_assignment(costs[i]);
    const Assignment mx = linear_sum_assignment(costs[i], true);
    EXPECT_EQ(mn.rows.numel(), std::min(shapes[i].first, shapes[i].second));
    EXPECT_EQ(std::get<0>(at::_unique2(mn.cols)).numel(), mn.cols.numel());  // distinct columns
    EXPECT_NEAR(mn.total, ref[i][0].get<double>(), 1e-9) << i;
    EXPECT_NEAR(mx.total, ref[i][1].get<double>(), 1e-9) << i;
  }
}

}  // namespace
}  // namespace gradlens::metrics
