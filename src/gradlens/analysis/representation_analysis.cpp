#include "gradlens/analysis/representation_analysis.h"
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <tuple>
#include <utility>

#include "gradlens/cluster/gmm.h"
#include "gradlens/cluster/kmeans.h"
#include "gradlens/core/collectives.h"
#include "gradlens/core/numpy_random.h"
#include "gradlens/core/check.h"
#include "gradlens/core/timer.h"
#include "gradlens/metrics/contingency.h"
#include "gradlens/metrics/information.h"
#include "gradlens/metrics/internal.h"
#include "gradlens/metrics/matching.h"
#include "gradlens/core/tensor_checks.h"

namespace gradlens::analysis {

namespace {


// Distinct values of an int64 label vector.
int64_t ra_distinct(const torch::Tensor& labels) {
  return std::get<0>(at::_unique2(labels, /*sorted=*/false)).numel();
}

/// How the stages split the rows over ranks: every rank holds all rows, and
/// the sharded stages run on rows [begin, end) of them.
struct RaShards {
  core::Collectives& comm;  ///< single_process() when nothing is sharded
  int64_t begin = 0, end = 0;
  bool multi() const { return comm.world_size() > 1; }
  torch::Tensor mine(const torch::Tensor& t) const { return multi() ? t.slice(0, begin, end).contiguous() : t; }
  /// Every rank's block of `t` (rows [begin, end) of the whole), concatenated.
  torch::Tensor everyone(const torch::Tensor& t) const {
    return multi() ? comm.all_gather_rows(t.to(torch::kCPU)).to(t.device()) : t;
  }
};

// Scores a clustering of `z` against the true labels.
void ra_score(ClusteringResult& r, const torch::Tensor& z, const torch::Tensor& truth,
              const AnalyzeOptions& opts, const RaShards& shards) {
  const int64_t n = z.size(0);
  r.clusters_found = ra_distinct(r.labels);
  r.ari = metrics::adjusted_rand_score(truth, r.labels);
  r.nmi = metrics::normalized_mutual_info_score(truth, r.labels);
  r.ami = metrics::adjusted_mutual_info_score(truth, r.labels);
  r.accuracy = metrics::cluster_accuracy(truth, r.labels).accuracy;
  if (r.clusters_found >= 2 && r.clusters_found <= n - 1) {
    metrics::SilhouetteOptions so;
    so.metric = metrics::SilhouetteMetric::kEuclidean;
    so.sample_size = opts.silhouette_sample_size;
    so.seed = static_cast<uint32_t>(opts.seed);
    // A subsample may hold a single cluster: then the silhouette is undefined.
    // The exact score runs on the ranks' blocks; a subsample on every rank.
    const bool sharded = shards.multi() && (so.sample_size == 0 || so.sample_size >= n);
    if (sharded) so.sample_size = 0;  // every row, as a sample of >= n rows is
    try {
      r.silhouette = sharded ? metrics::silhouette_score(shards.mine(z), shards.mine(r.labels), so, shards.comm)
                             : metrics::silhouette_score(z, r.labels, so);
    } catch (const c10::Error&) {
      if (opts.silhouette_sample_size == 0 || opts.silhouette_sample_size >= n) throw;
    }
  }
}

}  // namespace

std::string row_normalization_name(RowNormalization n) {
  return n == RowNormalization::kL2 ? "l2" : "none";
}

RowNormalization parse_row_normalization(const std::string& s, const std::string& flag) {
  if (s == "none") return RowNormalization::kNone;
  if (s == "l2") return RowNormalization::kL2;
  GRADLENS_CHECK_OPTION(false, flag, ": unknown normalisation '", s, "'; use none or l2");
  return RowNormalization::kNone;
}

std::string covariance_type_name(cluster::CovarianceType t) {
  switch (t) {
    case cluster::CovarianceType::kFull: return "full";
    case cluster::CovarianceType::kTied: return "tied";
    case cluster::CovarianceType::kDiag: return "diag";
    case cluster::CovarianceType::kSpherical: return "spherical";
  }
  return "full";
}

cluster::CovarianceType parse_covariance_type(const std::string& s, const std::string& flag) {
  for (auto t : {cluster::CovarianceType::kFull, cluster::CovarianceType::kTied,
                 cluster::CovarianceType::kDiag, cluster::CovarianceType::kSpherical})
    if (s == covariance_type_name(t)) return t;
  GRADLENS_CHECK_OPTION(false, flag, ": unknown covariance type '", s, "'; use full, diag, tied or spherical");
  return cluster::CovarianceType::kFull;
}

std::string pca_solver_name(reduce::PcaSolver s) {
  switch (s) {
    case reduce::PcaSolver::kExact: return "exact";
    case reduce::PcaSolver::kFullSvd: return "full";
    case reduce::PcaSolver::kCovariance: return "covariance";
    case reduce::PcaSolver::kRowGram: return "row-gram";
    case reduce::PcaSolver::kRandomized: return "randomized";
  }
  return "exact";
}

reduce::PcaSolver parse_pca_solver(const std::string& s, const std::string& flag) {
  if (s == "exact") return reduce::PcaSolver::kExact;
  if (s == "randomized") return reduce::PcaSolver::kRandomized;
  GRADLENS_CHECK_OPTION(false, flag, ": unknown PCA solver '", s, "'; use exact or randomized");
  return reduce::PcaSolver::kExact;
}

RepresentationAnalysis analyze_representation(const torch::Tensor& x, const torch::Tensor& labels,
                                              int64_t num_classes, const AnalyzeOptions& opts,
                                              const core::ProgressFn& progress, core::Collectives& comm) {
  const core::Stopwatch t_total;
  core::check_matrix(x, "analyze_representation: x");
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  GRADLENS_CHECK(n >= 2, "analyze_representation: x has ", n,
                 " row; clustering and PCA need at least 2 samples");
  core::check_labels(labels, n, "analyze_representation: labels");
  GRADLENS_CHECK(num_classes >= 1, "analyze_representation: num_classes must be >= 1, got ", num_classes);
  const torch::Tensor truth = labels.to(x.device(), torch::kInt64);
  {
    const int64_t lo = truth.min().item<int64_t>(), hi = truth.max().item<int64_t>();
    GRADLENS_CHECK(lo >= 0 && hi < num_classes, "analyze_representation: labels must lie in [0, ",
                   num_classes, "), got values in [", lo, ", ", hi, "]");
  }
  const int64_t k = opts.k == 0 ? num_classes : opts.k;
  GRADLENS_CHECK(opts.k >= 0, "--k: the number of clusters must be >= 0 (0 = the number of classes), got ",
                 opts.k);
  GRADLENS_CHECK(k <= n, "--k: ", k, " clusters for ", n, " samples; k must be <= the number of samples");
  GRADLENS_CHECK(opts.pca_dims >= 0, "--pca-dims must be >= 0 (0 = cluster the raw rows), got ",
                 opts.pca_dims);
  GRADLENS_CHECK(opts.kmeans_n_init >= 1, "--kmeans-n-init must be >= 1, got ", opts.kmeans_n_init);
  GRADLENS_CHECK(opts.gmm_n_init >= 1, "--gmm-n-init must be >= 1, got ", opts.gmm_n_init);
  GRADLENS_CHECK(opts.kmeans_max_iter >= 1 && opts.gmm_max_iter >= 1,
                 "analyze_representation: max_iter must be >= 1");
  GRADLENS_CHECK(opts.kmeans_tol >= 0 && opts.gmm_tol >= 0, "analyze_representation: tol must be >= 0");
  GRADLENS_CHECK(opts.reg_covar >= 0 && std::isfinite(opts.reg_covar), "--reg-covar must be >= 0, got ",
                 opts.reg_covar);
  GRADLENS_CHECK(opts.silhouette_sample_size >= 0, "--silhouette-sample must be >= 0 (0 = exact), got ",
                 opts.silhouette_sample_size);
  GRADLENS_CHECK(opts.seed <= 0xFFFFFFFFull, "--seed must be in [0, 2^32 - 1] (a numpy RandomState seed), got ",
                 opts.seed);

  // Over several ranks (with at least 2 rows each), PCA's covariance route,
  // KMeans, GMM and the exact silhouette run on each rank's block of rows.
  const bool multi = comm.world_size() > 1 && n >= 2 * static_cast<int64_t>(comm.world_size());
  RaShards shards{multi ? comm : core::single_process(), 0, n};
  if (multi) std::tie(shards.begin, shards.end) = core::shard_range(n, comm.rank(), comm.world_size());

  RepresentationAnalysis r;
  r.n = n;
  r.d = d;
  r.k = k;
  const int64_t steps = 4;
  auto step = [&](int64_t done, const std::string& note) {
    core::ProgressEvent ev;
    ev.stage = "analyze";
    ev.done = done;
    ev.total = steps;
    ev.elapsed_s = t_total.seconds();
    ev.note = note;
    ev.stage_end = done == steps;
    core::report(progress, ev);
  };

  // 1. Cos_Sim on the raw rows.
  core::Stopwatch t0;
  r.cosine = class_cosine_similarity(x, truth);
  r.seconds.emplace_back("cosine", t0.seconds());
  step(1, "cosine");

  // 2. Normalisation and PCA.
  t0.restart();
  torch::Tensor xn = x;
  if (opts.normalize == RowNormalization::kL2) {
    const torch::Tensor norm = x.norm(2, 1, /*keepdim=*/true);
    xn = x / torch::where(norm > 0, norm, torch::ones_like(norm));
  }
  const int64_t rank_bound = std::min(n, d);
  const int64_t dims = opts.pca_dims > 0 ? std::min({opts.pca_dims, d, n - 1}) : 0;
  const int64_t n_ratio = std::min<int64_t>(10, rank_bound);
  reduce::PcaOptions po;
  po.n_components = std::max({n_ratio, dims, std::min<int64_t>(2, rank_bound)});
  po.solver = opts.pca_solver;
  po.seed = opts.seed;
  // The covariance route (what kExact takes for n >= 2d) sums over the
  // ranks' blocks; the other solvers see all rows on every rank.
  const bool shard_pca = multi && opts.pca_solver == reduce::PcaSolver::kExact && n >= 2 * d;
  const reduce::Pca pca = shard_pca ? reduce::pca_fit(shards.mine(xn), po, comm) : reduce::pca_fit(xn, po);
  const torch::Tensor scores = reduce::pca_transform(pca, xn);
  r.pca.solver = pca.solver;
  r.pca.dims = dims;
  const torch::Tensor ratio = pca.explained_variance_ratio.to(torch::kCPU, torch::kDouble).contiguous();
  r.pca.explained_variance_ratio.assign(ratio.data_ptr<double>(), ratio.data_ptr<double>() + n_ratio);
  r.pca.cumulative_ratio = dims > 0 ? ratio.slice(0, 0, dims).sum().item<double>() : 1.0;
  r.pca2 = torch::zeros({n, 2}, x.options().dtype(torch::kFloat32));
  const int64_t c2 = std::min<int64_t>(2, scores.size(1));
  r.pca2.slice(1, 0, c2).copy_(scores.slice(1, 0, c2));
  const std::string prefix = opts.normalize == RowNormalization::kL2 ? "l2" : "";
  torch::Tensor z;
  if (dims > 0) {
    z = scores.slice(1, 0, dims).to(torch::kFloat64).contiguous();
    r.clustering_input = (prefix.empty() ? "" : prefix + "+") + "pca" + std::to_string(dims);
  } else {
    z = xn.to(torch::kFloat64).contiguous();
    r.clustering_input = prefix.empty() ? "raw" : prefix;
  }
  r.clustering_dims = z.size(1);
  r.seconds.emplace_back("pca", t0.seconds());
  step(2, "pca");

  // 3. KMeans.
  t0.restart();
  try {
    cluster::KMeansOptions ko;
    ko.k = k;
    ko.n_init = opts.kmeans_n_init;
    ko.max_iter = opts.kmeans_max_iter;
    ko.tol = opts.kmeans_tol;
    ko.seed = opts.seed;
    const auto km = cluster::kmeans_fit(shards.mine(z), ko, shards.comm);
    ClusteringResult c;
    c.labels = shards.everyone(km.labels);
    c.inertia = km.inertia;
    c.converged = km.converged;
    c.n_iter = km.n_iter;
    ra_score(c, z, truth, opts, shards);
    r.kmeans = std::move(c);
  } catch (const std::exception& e) {
    r.kmeans = ClusteringResult{};
    r.kmeans.error = error_message(e);
  }
  r.kmeans.method = "kmeans";
  r.kmeans.seconds = t0.seconds();
  r.seconds.emplace_back("kmeans", r.kmeans.seconds);
  step(3, "kmeans");

  // 4. GMM: a fit that fails (e.g. a covariance that is not positive
  // definite) is recorded, not thrown.
  t0.restart();
  try {
    cluster::GmmOptions go;
    go.n_components = k;
    go.covariance_type = opts.gmm_covariance;
    go.tol = opts.gmm_tol;
    go.reg_covar = opts.reg_covar;
    go.max_iter = opts.gmm_max_iter;
    go.n_init = opts.gmm_n_init;
    go.seed = opts.seed;
    cluster::GaussianMixture gm;
    ClusteringResult c;
    if (multi && go.n_init == 1) {
      // One process's initialisation (KMeans, one run, seeds from the GMM's
      // RandomState), run over the ranks, handed to EM as responsibilities.
      const torch::Tensor zm = shards.mine(z);
      core::NumpyRandomState rng(go.seed);
      cluster::KMeansOptions ko;
      ko.k = k;
      ko.n_init = 1;
      const auto km = cluster::detail::kmeans_fit_with_rng(zm, ko, rng, comm);
      go.init = cluster::GmmInit::kGiven;
      go.init_resp = torch::one_hot(km.labels, k).to(torch::kFloat64);
      gm = cluster::gmm_fit(zm, go, comm);
      c.labels = shards.everyone(cluster::gmm_predict(gm, zm));
    } else {
      gm = cluster::gmm_fit(z, go);
      c.labels = cluster::gmm_predict(gm, z);
    }
    c.lower_bound = gm.lower_bound;
    c.converged = gm.converged;
    c.n_iter = gm.n_iter;
    ra_score(c, z, truth, opts, shards);
    r.gmm = std::move(c);
  } catch (const std::exception& e) {
    r.gmm = ClusteringResult{};
    r.gmm.error = error_message(e);
  }
  r.gmm.method = "gmm";
  r.gmm.seconds = t0.seconds();
  r.seconds.emplace_back("gmm", r.gmm.seconds);
  r.seconds.emplace_back("total", t_total.seconds());
  step(4, "gmm");
  return r;
}

}  // namespace gradlens::analysis
