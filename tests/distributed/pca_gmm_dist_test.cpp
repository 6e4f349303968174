// Distributed PCA and GMM on 2 ranks (by all-reduce of sufficient
// statistics) equal reduce::pca_fit and cluster::gmm_fit on the gathered
// rows: same components (signs included), variances, mixture parameters,
// labels and iteration counts.
#include "gradlens/cluster/gmm.h"
#include "gradlens/distributed/context.h"
#include "gradlens/reduce/pca.h"

#include <torch/types.h>

#include "distributed/dist_test_util.h"
#include "gradlens/core/npy.h"

namespace gradlens::distributed {
namespace {

using test::dist_dir;
using test::dist_is_worker;
using test::dist_spawn;

// 401 correlated rows of 6 features (float32), with one far row in the
// second rank's shard, so the sign of some component is decided there.
torch::Tensor dpg_pca_data() {
  torch::manual_seed(21);
  auto x = torch::matmul(torch::randn({401, 6}), torch::randn({6, 6})) + torch::randn({6}) * 5;
  x[350] = x[350] * 8;
  return x;
}

reduce::PcaOptions dpg_pca_options(int which) {
  reduce::PcaOptions o;
  o.solver = reduce::PcaSolver::kCovariance;
  if (which == 1) {
    o.n_components = 3;
    o.whiten = true;
  }
  return o;
}

// 301 rows in 3 overlapping blobs of 5 features; initial responsibilities
// one-hot by the nearest of rows 0, 3, 7 (blobs 0, 0, 1: a poor start, so EM
// needs many iterations).
torch::Tensor dpg_gmm_data() {
  torch::manual_seed(22);
  const auto centres = torch::randn({3, 5}) * 2.5;
  const auto truth = torch::arange(301, torch::kInt64) % 3;
  return centres.index_select(0, truth) + torch::randn({301, 5}) * torch::tensor({1.0, 0.5, 2.0, 1.0, 0.7});
}
torch::Tensor dpg_gmm_resp(const torch::Tensor& x) {
  const auto labels = torch::cdist(x, x.index_select(0, torch::tensor({0, 3, 7}, torch::kInt64))).argmin(1);
  return torch::nn::functional::one_hot(labels, 3).to(torch::kFloat64);
}
const cluster::CovarianceType kDpgTypes[] = {cluster::CovarianceType::kFull, cluster::CovarianceType::kTied,
                                             cluster::CovarianceType::kDiag, cluster::CovarianceType::kSpherical};
cluster::GmmOptions dpg_gmm_options(int which, const torch::Tensor& resp) {
  cluster::GmmOptions o;
  o.n_components = 3;
  o.covariance_type = kDpgTypes[which];
  o.init = cluster::GmmInit::kGiven;
  o.init_resp = resp;
  o.tol = 1e-8;
  return o;
}

TEST(DistWorker, PcaGmm) {
  if (!dist_is_worker()) GTEST_SKIP() << "runs inside spawned ranks only";
  Communicator comm{DistOptions{}};
  const auto x = dpg_pca_data();
  auto [b, e] = shard_range(x.size(0), comm.rank(), comm.world_size());
  for (int which = 0; which < 2; ++which) {
    const auto p = reduce::pca_fit(x.slice(0, b, e), dpg_pca_options(which), comm);
    if (comm.is_root()) {
      const std::string s = std::to_string(which);
      core::write_npy(dist_dir() / ("pca_components" + s + ".npy"), p.components);
      core::write_npy(dist_dir() / ("pca_var" + s + ".npy"),
                      torch::cat({p.explained_variance, p.explained_variance_ratio, p.singular_values, p.mean,
                                  torch::tensor({float(p.noise_variance), float(p.n_samples)})}));
      core::write_npy(dist_dir() / ("pca_scores" + s + ".npy"), reduce::pca_transform(p, x));
    }
  }
  const auto g = dpg_gmm_data();
  std::tie(b, e) = shard_range(g.size(0), comm.rank(), comm.world_size());
  const auto resp = dpg_gmm_resp(g);
  for (int which = 0; which < 4; ++which) {
    const auto gm = cluster::gmm_fit(g.slice(0, b, e), dpg_gmm_options(which, resp.slice(0, b, e)), comm);
    const auto labels = comm.gather_rows(cluster::gmm_predict(gm, g.slice(0, b, e)));
    if (comm.is_root()) {
      const std::string s = std::to_string(which);
      core::write_npy(dist_dir() / ("gmm_params" + s + ".npy"),
                      torch::cat({gm.weights, gm.means.reshape(-1), gm.covariances.reshape(-1),
                                  gm.precisions_cholesky.reshape(-1)}));
      core::write_npy(dist_dir() / ("gmm_labels" + s + ".npy"), labels);
      core::write_npy(dist_dir() / ("gmm_stats" + s + ".npy"),
                      torch::tensor({gm.lower_bound, double(gm.n_iter), double(gm.converged)}, torch::kFloat64));
    }
  }
  // KMeans or random initialisation draws from one process's stream: refused.
  auto o = dpg_gmm_options(0, resp.slice(0, b, e));
  o.init = cluster::GmmInit::kKMeans;
  bool refused = false;
  try {
    cluster::gmm_fit(g.slice(0, b, e), o, comm);
  } catch (const c10::Error& err) {
    refused = std::string(err.what()).find("only init = kGiven") != std::string::npos;
  }
  if (comm.is_root()) core::write_npy(dist_dir() / "gmm_refused.npy", torch::tensor({int64_t{refused}}));
  // The randomized and full-SVD PCA solvers need all rows in one process: refused.
  const auto xs = dpg_pca_data();
  std::tie(b, e) = shard_range(xs.size(0), comm.rank(), comm.world_size());
  int64_t pca_refused = 0;
  for (const auto solver : {reduce::PcaSolver::kRandomized, reduce::PcaSolver::kFullSvd}) {
    auto po = dpg_pca_options(0);
    po.solver = solver;
    try {
      reduce::pca_fit(xs.slice(0, b, e), po, comm);
    } catch (const c10::Error& err) {
      pca_refused += std::string(err.what()).find("only the covariance solver") != std::string::npos;
    }
  }
  if (comm.is_root()) core::write_npy(dist_dir() / "pca_refused.npy", torch::tensor({pca_refused}));
}

double dpg_rel(const torch::Tensor& got, const torch::Tensor& want) {
  return test::max_abs_diff(got.to(torch::kFloat64), want.to(torch::kFloat64)) /
         want.abs().max().item<double>();
}

class DistPcaGmmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir;
    const auto ranks = dist_spawn("DistWorker.PcaGmm", 2, dir_->path());
    for (size_t r = 0; r < ranks.size(); ++r) ASSERT_EQ(ranks[r].exit_code, 0) << "rank " << r << ":\n" << ranks[r].output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static test::TempDir* dir_;
};
test::TempDir* DistPcaGmmTest::dir_ = nullptr;

TEST_F(DistPcaGmmTest, PcaEqualsSingleProcessOnTheGatheredRows) {
  const auto x = dpg_pca_data();
  for (int which = 0; which < 2; ++which) {
    SCOPED_TRACE("case " + std::to_string(which));
    const auto want = reduce::pca_fit(x, dpg_pca_options(which));
    const std::string s = std::to_string(which);
    const auto comps = core::read_npy(dir_->path() / ("pca_components" + s + ".npy"));
    const auto var = core::read_npy(dir_->path() / ("pca_var" + s + ".npy"));
    const auto want_var = torch::cat({want.explained_variance, want.explained_variance_ratio, want.singular_values,
                                      want.mean, torch::tensor({float(want.noise_variance), float(want.n_samples)})});
    ASSERT_EQ(comps.sizes(), want.components.sizes());
    EXPECT_LE(dpg_rel(comps, want.components), 1e-6);  // signs included: a flip would be a difference of ~2
    EXPECT_LE(dpg_rel(var, want_var), 1e-6);
    EXPECT_LE(dpg_rel(core::read_npy(dir_->path() / ("pca_scores" + s + ".npy")), reduce::pca_transform(want, x)),
              1e-6);
  }
  // The far row (in rank 1's shard) decides the sign of the first component.
  const auto want = reduce::pca_fit(x, dpg_pca_options(0));
  const auto u = torch::matmul(x - want.mean, want.components.t());
  EXPECT_GE(u.abs().argmax(0)[0].item<int64_t>(), 201);
}

TEST_F(DistPcaGmmTest, PcaSolversThatNeedAllRowsAreRefused) {
  EXPECT_EQ(core::read_npy(dir_->path() / "pca_refused.npy")[0].item<int64_t>(), 2);
}

TEST_F(DistPcaGmmTest, GmmEqualsSingleProcessWithTheSameInitialisation) {
  const auto g = dpg_gmm_data();
  const auto resp = dpg_gmm_resp(g);
  for (int which = 0; which < 4; ++which) {
    SCOPED_TRACE("covariance type " + std::to_string(which));
    const auto want = cluster::gmm_fit(g, dpg_gmm_options(which, resp));
    const std::string s = std::to_string(which);
    const auto params = core::read_npy(dir_->path() / ("gmm_params" + s + ".npy"));
    const auto want_params = torch::cat({want.weights, want.means.reshape(-1), want.covariances.reshape(-1),
                                         want.precisions_cholesky.reshape(-1)});
    ASSERT_EQ(params.sizes(), want_params.sizes());
    EXPECT_LE(dpg_rel(params, want_params), 1e-6);
    EXPECT_TRUE(torch::equal(core::read_npy(dir_->path() / ("gmm_labels" + s + ".npy")), cluster::gmm_predict(want, g)));
    const auto st = core::read_npy(dir_->path() / ("gmm_stats" + s + ".npy"));
    EXPECT_NEAR(st[0].item<double>(), want.lower_bound, 1e-9 * std::abs(want.lower_bound));
    EXPECT_EQ(st[1].item<double>(), want.n_iter);
    EXPECT_EQ(st[2].item<double>(), want.converged ? 1.0 : 0.0);
    EXPECT_GT(want.n_iter, 5);  // EM really iterated
  }
  EXPECT_EQ(core::read_npy(dir_->path() / "gmm_refused.npy")[0].item<int64_t>(), 1);
}

}  // namespace
}  // namespace gradlens::distributed
