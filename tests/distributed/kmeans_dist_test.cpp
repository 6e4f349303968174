// cluster::kmeans_fit over a 2-rank Communicator equals it in one process on
// the same data and initial centres: labels, n_iter and float32 centroids bitwise, inertia
// to float64 summation order.
#include "gradlens/cluster/kmeans.h"
#include "gradlens/distributed/context.h"

#include <torch/types.h>

#include "distributed/dist_test_util.h"
#include "gradlens/core/npy.h"

namespace gradlens::distributed {
namespace {

using test::dist_dir;
using test::dist_is_worker;
using test::dist_spawn;

// 601 float32 rows (odd, so the shards differ in size) in 4 blobs of 6 features.
torch::Tensor dkm_test_data() {
  torch::manual_seed(11);
  const auto centres = torch::randn({4, 6}) * 3;
  const auto truth = torch::arange(601, torch::kInt64) % 4;
  return centres.index_select(0, truth) + torch::randn({601, 6});
}

// Initial centres per case: 0 = four data rows, 1 = one far-away centre that
// gets no point (empty-cluster relocation), 2 = k-means++ (seed 7), 3 =
// k-means++ with 5 runs (seed 3, k 6: the runs end in different clusterings).
cluster::KMeansOptions dkm_test_options(int which, const torch::Tensor& x) {
  cluster::KMeansOptions o;
  o.k = 4;
  o.init = cluster::KMeansInit::kGiven;
  if (which == 0) o.init_centroids = x.index_select(0, torch::tensor({0, 1, 2, 5}, torch::kInt64));
  if (which == 1) {
    o.init_centroids = x.index_select(0, torch::tensor({0, 1, 2, 3}, torch::kInt64)).clone();
    o.init_centroids[3].fill_(1000.0f);
  }
  if (which == 2) {
    o.init = cluster::KMeansInit::kKMeansPlusPlus;
    o.seed = 7;
  }
  if (which == 3) {
    o.init = cluster::KMeansInit::kKMeansPlusPlus;
    o.k = 6;
    o.n_init = 5;
    o.seed = 3;
  }
  return o;
}

TEST(DistWorker, KMeans) {
  if (!dist_is_worker()) GTEST_SKIP() << "runs inside spawned ranks only";
  Communicator comm{DistOptions{}};
  const auto x = dkm_test_data();
  const auto [b, e] = shard_range(x.size(0), comm.rank(), comm.world_size());
  for (int which = 0; which < 4; ++which) {
    const auto r = cluster::kmeans_fit(x.slice(0, b, e), dkm_test_options(which, x), comm);
    const auto labels = comm.gather_rows(r.labels);
    if (comm.is_root()) {
      const std::string s = std::to_string(which);
      core::write_npy(dist_dir() / ("labels" + s + ".npy"), labels);
      core::write_npy(dist_dir() / ("centroids" + s + ".npy"), r.centroids);
      core::write_npy(dist_dir() / ("stats" + s + ".npy"),
                      torch::tensor({r.inertia, double(r.n_iter), double(r.converged), double(r.best_init)},
                                    torch::kFloat64));
    }
  }
  // Column-major rows give the same clustering as row-major ones.
  {
    const auto shard = x.slice(0, b, e);
    const auto column_major = shard.t().contiguous().t();
    ASSERT_FALSE(column_major.is_contiguous());
    const auto a = cluster::kmeans_fit(shard, dkm_test_options(0, x), comm);
    const auto c = cluster::kmeans_fit(column_major, dkm_test_options(0, x), comm);
    const bool same = torch::equal(a.labels, c.labels) && torch::equal(a.centroids, c.centroids);
    if (comm.is_root()) core::write_npy(dist_dir() / "layout.npy", torch::tensor({int64_t{same}}));
  }
  // Random seeding needs every row in one place.
  auto o = dkm_test_options(0, x);
  o.init = cluster::KMeansInit::kRandom;
  bool refused = false;
  try {
    cluster::kmeans_fit(x.slice(0, b, e), o, comm);
  } catch (const c10::Error& err) {
    refused = std::string(err.what()).find("only init = kGiven") != std::string::npos;
  }
  if (comm.is_root()) core::write_npy(dist_dir() / "refused.npy", torch::tensor({int64_t{refused}}));
}

TEST(DistKMeansTest, TwoRanksEqualOneProcess) {
  test::TempDir dir;
  const auto ranks = dist_spawn("DistWorker.KMeans", 2, dir.path());
  for (size_t r = 0; r < ranks.size(); ++r) ASSERT_EQ(ranks[r].exit_code, 0) << "rank " << r << ":\n" << ranks[r].output;
  const auto x = dkm_test_data();
  for (int which = 0; which < 4; ++which) {
    SCOPED_TRACE("case " + std::to_string(which));
    const auto want = cluster::kmeans_fit(x, dkm_test_options(which, x));
    const std::string s = std::to_string(which);
    const auto labels = core::read_npy(dir / ("labels" + s + ".npy"));
    const auto centroids = core::read_npy(dir / ("centroids" + s + ".npy"));
    const auto stats = core::read_npy(dir / ("stats" + s + ".npy"));
    EXPECT_TRUE(torch::equal(labels, want.labels));
    EXPECT_TRUE(torch::equal(centroids, want.centroids)) << test::max_abs_diff(centroids, want.centroids);
    EXPECT_NEAR(stats[0].item<double>(), want.inertia, 1e-10 * want.inertia);
    EXPECT_EQ(stats[1].item<double>(), want.n_iter);
    EXPECT_EQ(stats[2].item<double>(), want.converged ? 1.0 : 0.0);
    EXPECT_EQ(stats[3].item<double>(), want.best_init);
    EXPECT_GT(want.n_iter, 1);
  }
  // Case 1 really relocated: the far centre ends inside the data.
  EXPECT_LT(core::read_npy(dir / "centroids1.npy").abs().max().item<float>(), 100.0f);
  EXPECT_EQ(core::read_npy(dir / "refused.npy")[0].item<int64_t>(), 1);
  EXPECT_EQ(core::read_npy(dir / "layout.npy")[0].item<int64_t>(), 1);
}

}  // namespace
}  // namespace gradlens::distributed
