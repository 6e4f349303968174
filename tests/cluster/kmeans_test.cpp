#include "gradlens/cluster/kmeans.h"
#include "cluster/same_partition.h"

#include "support/support.h"

#include <torch/types.h>

namespace gradlens::cluster {
namespace {

using test::SeededTest;

torch::Tensor blobs(int64_t n, int64_t d, int64_t k, double spread, torch::Tensor* truth,
                    torch::ScalarType dtype = torch::kFloat64) {
  const auto centres = torch::randn({k, d}, torch::kFloat64) * 10;
  *truth = torch::arange(n, torch::kInt64) % k;
  return (centres.index_select(0, *truth) + spread * torch::randn({n, d}, torch::kFloat64)).to(dtype);
}

TEST(KMeansTest, HandCaseWithGivenCentres) {
  const auto x = torch::tensor({0., 1., 10., 11.}).view({4, 1});
  KMeansOptions o;
  o.k = 2;
  o.init = KMeansInit::kGiven;
  o.init_centroids = torch::tensor({0., 10.}).view({2, 1});
  const auto r = kmeans_fit(x, o);
  EXPECT_TRUE(torch::allclose(r.centroids, torch::tensor({0.5, 10.5}).view({2, 1})));
  EXPECT_TRUE(torch::equal(r.labels, torch::tensor({0, 0, 1, 1}, torch::kInt64)));
  EXPECT_NEAR(r.inertia, 1.0, 1e-12);
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.n_iter, 2);  // the second iteration sees unchanged labels
}

TEST(KMeansTest, EmptyClusterIsRelocatedToTheFarthestPoint) {
  const auto x = torch::tensor({0., 1., 10., 11.}).view({4, 1});
  KMeansOptions o;
  o.k = 2;
  o.init = KMeansInit::kGiven;
  o.init_centroids = torch::tensor({0., 1000.}).view({2, 1});  // the second centre gets no point
  const auto r = kmeans_fit(x, o);
  // Iteration 1 moves point 11 (farthest from centre 0) into cluster 1: centres
  // 11/3 and 11; then Lloyd reaches 0.5 and 10.5.
  EXPECT_TRUE(torch::allclose(r.centroids, torch::tensor({0.5, 10.5}).view({2, 1})));
  EXPECT_NEAR(r.inertia, 1.0, 1e-12);
}

TEST_F(SeededTest, KEqualsOneGivesTheMean) {
  const auto x = torch::randn({50, 3}, torch::kFloat64);
  KMeansOptions o;
  o.k = 1;
  const auto r = kmeans_fit(x, o);
  EXPECT_LT(test::max_abs_diff(r.centroids[0], x.mean(0)), 1e-12);
  EXPECT_NEAR(r.inertia, (x - x.mean(0)).pow(2).sum().item<double>(), 1e-9);
  EXPECT_EQ(r.labels.max().item<int64_t>(), 0);
}

TEST_F(SeededTest, RecoversSeparatedBlobsWhateverTheLabelNumbers) {
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    for (auto init : {KMeansInit::kKMeansPlusPlus, KMeansInit::kRandom}) {
      torch::Tensor truth;
      const auto x = blobs(600, 8, 5, 0.5, &truth, dtype);
      KMeansOptions o;
      o.k = 5;
      o.n_init = 10;  // random seeding needs restarts to hit all 5 blobs
      o.seed = 3;
      o.init = init;
      o.chunk_rows = 128;
      const auto r = kmeans_fit(x, o);
      EXPECT_EQ(r.centroids.scalar_type(), dtype);
      EXPECT_TRUE(test::same_partition(truth, r.labels)) << "dtype " << dtype << " init " << static_cast<int>(init);
      EXPECT_TRUE(r.converged);
      EXPECT_TRUE(torch::equal(kmeans_predict(x, r.centroids), r.labels));
      // The inertia is the sum of squared distances to the assigned centres.
      const double direct =
          (x.to(torch::kFloat64) - r.centroids.to(torch::kFloat64).index_select(0, r.labels)).pow(2).sum().item<double>();
      EXPECT_NEAR(r.inertia, direct, 1e-6 * direct);
      // Same seed, same result.
      EXPECT_TRUE(torch::equal(kmeans_fit(x, o).labels, r.labels));
    }
  }
}

TEST_F(SeededTest, ProgressAndMaxIter) {
  const auto x = torch::randn({300, 4}, torch::kFloat64);
  KMeansOptions o;
  o.k = 7;
  o.max_iter = 2;
  o.tol = 0;
  int events = 0;
  o.progress = [&events](const core::ProgressEvent& ev) {
    EXPECT_EQ(ev.stage, "kmeans");
    ++events;
  };
  const auto r = kmeans_fit(x, o);
  EXPECT_EQ(r.n_iter, 2);
  EXPECT_EQ(events, 2);
  EXPECT_FALSE(r.converged);
}

TEST(KMeansTest, Errors) {
  const auto x = torch::randn({5, 2});
  KMeansOptions o;
  o.k = 6;
  GRADLENS_EXPECT_THROWS_WITH(kmeans_fit(x, o), "k = 6 is larger than the number of rows (5)");
  o.k = 0;
  GRADLENS_EXPECT_THROWS_WITH(kmeans_fit(x, o), "k must be >= 1");
  o.k = 2;
  auto bad = x.clone();
  bad[4][1] = NAN;
  GRADLENS_EXPECT_THROWS_WITH(kmeans_fit(bad, o), "row 4");
  GRADLENS_EXPECT_THROWS_WITH(kmeans_fit(torch::zeros({0, 2}), o), "empty");
  GRADLENS_EXPECT_THROWS_WITH(kmeans_fit(torch::zeros({5, 0}), o), "empty");
  GRADLENS_EXPECT_THROWS_WITH(kmeans_fit(torch::zeros({5}), o), "2-D");
  o.init = KMeansInit::kGiven;
  GRADLENS_EXPECT_THROWS_WITH(kmeans_fit(x, o), "init_centroids");
  o.init_centroids = torch::zeros({3, 2});
  GRADLENS_EXPECT_THROWS_WITH(kmeans_fit(x, o), "[k, d] = [2, 2]");
  o.init = KMeansInit::kKMeansPlusPlus;
  o.seed = uint64_t{1} << 33;
  GRADLENS_EXPECT_THROWS_WITH(kmeans_fit(x, o), "2^32 - 1");
  GRADLENS_EXPECT_THROWS_WITH(kmeans_predict(x, torch::zeros({2, 3})), "columns");
}

}  // namespace
}  // namespace gradlens::cluster
