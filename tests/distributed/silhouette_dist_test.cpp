// Distributed silhouette on 2 ranks (each rank's rows against the gathered
// matrix, sums all-reduced) equals metrics::silhouette_samples/score.
#include "gradlens/distributed/context.h"
#include "gradlens/metrics/internal.h"

#include <torch/types.h>

#include "distributed/dist_test_util.h"
#include "gradlens/core/npy.h"

namespace gradlens::distributed {
namespace {

using test::dist_dir;
using test::dist_is_worker;
using test::dist_spawn;

// 257 rows in 4 overlapping blobs (labels 3, 5, 9, 11) plus a singleton
// (label 42, row 200, in rank 1's shard), float32.
std::pair<torch::Tensor, torch::Tensor> dsil_data() {
  torch::manual_seed(31);
  const auto values = torch::tensor({3, 5, 9, 11}, torch::kInt64);
  auto labels = values.index_select(0, torch::arange(257, torch::kInt64) % 4);
  labels[200] = 42;
  const auto x = torch::randn({257, 4}) + torch::randn({43, 4}).index_select(0, labels) * 1.5;
  return {x, labels};
}

metrics::SilhouetteOptions dsil_options(int which) {
  metrics::SilhouetteOptions o;
  if (which == 1) o.metric = metrics::SilhouetteMetric::kCosine;
  o.chunk_rows = which == 1 ? 37 : 0;
  return o;
}

TEST(DistWorker, Silhouette) {
  if (!dist_is_worker()) GTEST_SKIP() << "runs inside spawned ranks only";
  Communicator comm{DistOptions{}};
  const auto [x, labels] = dsil_data();
  const auto [b, e] = shard_range(x.size(0), comm.rank(), comm.world_size());
  for (int which = 0; which < 2; ++which) {
    const auto s = comm.gather_rows(
        metrics::silhouette_samples(x.slice(0, b, e), labels.slice(0, b, e), dsil_options(which), comm));
    const double score = metrics::silhouette_score(x.slice(0, b, e), labels.slice(0, b, e), dsil_options(which), comm);
    const std::string w = std::to_string(which);
    if (comm.is_root()) core::write_npy(dist_dir() / ("samples" + w + ".npy"), s);
    core::write_npy(dist_dir() / ("score" + w + "_rank" + std::to_string(comm.rank()) + ".npy"),
                    torch::tensor({score}, torch::kFloat64));
  }
  // Subsampling draws from one process's stream: refused over several ranks.
  auto o = dsil_options(0);
  o.sample_size = 50;
  int64_t refused = 0;
  try {
    metrics::silhouette_score(x.slice(0, b, e), labels.slice(0, b, e), o, comm);
  } catch (const c10::Error& err) {
    refused = std::string(err.what()).find("subsample the rows first") != std::string::npos;
  }
  if (comm.is_root()) core::write_npy(dist_dir() / "refused.npy", torch::tensor({refused}));
}

TEST(DistSilhouette, TwoRanksEqualOneProcess) {
  test::TempDir dir;
  const auto ranks = dist_spawn("DistWorker.Silhouette", 2, dir.path());
  for (size_t r = 0; r < ranks.size(); ++r) ASSERT_EQ(ranks[r].exit_code, 0) << "rank " << r << ":\n" << ranks[r].output;
  const auto [x, labels] = dsil_data();
  for (int which = 0; which < 2; ++which) {
    SCOPED_TRACE(which == 0 ? "euclidean" : "cosine");
    const auto want = metrics::silhouette_samples(x, labels, dsil_options(which));
    const std::string w = std::to_string(which);
    const auto got = core::read_npy(dir / ("samples" + w + ".npy"));
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LE(test::max_abs_diff(got, want), 1e-9);
    EXPECT_EQ(got[200].item<double>(), 0.0);  // the singleton
    const double want_score = metrics::silhouette_score(x, labels, dsil_options(which));
    EXPECT_GT(std::abs(want_score), 0.05);
    for (int r = 0; r < 2; ++r)
      EXPECT_NEAR(core::read_npy(dir / ("score" + w + "_rank" + std::to_string(r) + ".npy"))[0].item<double>(),
                  want_score, 1e-9);
  }
  EXPECT_EQ(core::read_npy(dir / "refused.npy")[0].item<int64_t>(), 1);
}

}  // namespace
}  // namespace gradlens::distributed
