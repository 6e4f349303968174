// The seed's analysis of one representation matrix: Cos_Sim within classes,
// PCA, then KMeans and GMM clustering scored against the true labels (ARI,
// NMI, AMI, Hungarian accuracy) and by the silhouette. A pure function over
// tensors; `gradlens analyze` (pipeline/analyze.h) runs it on every
// representation of a run directory.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "gradlens/analysis/cosine.h"
#include "gradlens/cluster/gmm.h"
#include "gradlens/core/collectives.h"
#include "gradlens/core/progress.h"
#include "gradlens/reduce/pca.h"

namespace gradlens::analysis {

/// Row scaling applied before the PCA (never to the cosine statistic).
enum class RowNormalization {
  kNone,  ///< rows as extracted
  kL2,    ///< each row divided by its Euclidean norm (all-zero rows stay zero)
};

/// "none" / "l2".
std::string row_normalization_name(RowNormalization n);
/// Parses "none" / "l2"; throws c10::Error naming `flag` otherwise.
RowNormalization parse_row_normalization(const std::string& s, const std::string& flag = "--normalize");
/// "full" / "tied" / "diag" / "spherical" (sklearn's covariance_type strings).
std::string covariance_type_name(cluster::CovarianceType t);
/// Parses sklearn's covariance_type strings; throws c10::Error naming `flag` otherwise.
cluster::CovarianceType parse_covariance_type(const std::string& s,
                                              const std::string& flag = "--gmm-covariance");
/// "exact" / "full" / "covariance" / "row-gram" / "randomized".
std::string pca_solver_name(reduce::PcaSolver s);
/// Parses "exact" / "randomized"; throws c10::Error naming `flag` otherwise.
reduce::PcaSolver parse_pca_solver(const std::string& s, const std::string& flag = "--pca-solver");

struct AnalyzeOptions {
  /// Clusters for KMeans and GMM; 0 = num_classes. The seed clusters into as
  /// many groups as there are classes, which is what ARI/NMI against the
  /// labels and the Hungarian accuracy are meant for. Must be <= N.
  int64_t k = 0;
  /// PCA to min(pca_dims, D, N - 1) dimensions before KMeans and GMM; 0 =
  /// cluster the raw (possibly normalised) rows. Default 50: a full-covariance
  /// GMM on raw 10^3..10^5-dimensional gradients needs a D x D covariance per
  /// component (infeasible, and singular for N < D), and KMeans distances in
  /// raw gradient space are dominated by the many low-variance noise
  /// directions; 50 components is the usual choice before clustering (as
  /// t-SNE/UMAP pipelines do) and keeps most of the variance of these
  /// representations (the cumulative ratio is reported). N - 1 bounds the
  /// rank of the centred data.
  int64_t pca_dims = 50;
  /// Exact (covariance or SVD, deterministic, the default: N x D up to a few
  /// 10^3 x 10^5 costs seconds) or randomized (sklearn's, numpy-exact seeding
  /// from `seed`; for very large N x D).
  reduce::PcaSolver pca_solver = reduce::PcaSolver::kExact;
  /// Row normalisation before the PCA. Default none: the seed clusters the
  /// representations as extracted, and gradient norms carry information
  /// (confidence); l2 compares directions only, as Cos_Sim does.
  RowNormalization normalize = RowNormalization::kNone;
  /// KMeans (k-means++, Lloyd) restarts; the lowest inertia wins. Default 10
  /// as scikit-learn 1.2 (the seed's tool): one restart often lands in a poor
  /// local minimum with k = 10 classes.
  int kmeans_n_init = 10;
  int kmeans_max_iter = 300;  ///< sklearn's default
  double kmeans_tol = 1e-4;   ///< sklearn's default (relative to the mean feature variance)
  /// GMM covariance. Default full, sklearn's default and the most general
  /// model; affordable after the PCA (k matrices of pca_dims^2).
  cluster::CovarianceType gmm_covariance = cluster::CovarianceType::kFull;
  /// GMM initialisations (KMeans-initialised, sklearn's default of 1).
  int gmm_n_init = 1;
  int gmm_max_iter = 100;  ///< sklearn's default
  double gmm_tol = 1e-3;   ///< sklearn's default (on the mean log-likelihood)
  /// Added to the covariance diagonals (sklearn's default). It is absolute,
  /// in the squared units of the clustering input: it regularises only when
  /// the component variances are much larger (scale tiny gradients up, or use
  /// --normalize l2, if they are not).
  double reg_covar = 1e-6;
  /// numpy RandomState seed (0 .. 2^32-1) for k-means++, the GMM's KMeans
  /// initialisation, the randomized PCA and the silhouette subsample, so the
  /// same seed reproduces scikit-learn's random_state=seed.
  uint64_t seed = 0;
  /// Silhouette on a random subset of this many samples (sklearn's
  /// sample_size); 0 = exact on all N. Default exact: after the PCA it costs
  /// O(N^2 pca_dims), about a second for N = 10^4.
  int64_t silhouette_sample_size = 0;
};

/// One clustering of the clustering input, scored against the labels.
struct ClusteringResult {
  std::string method;    ///< "kmeans" or "gmm"
  torch::Tensor labels;  ///< [N] int64 in [0, k); undefined when the fit failed
  int64_t clusters_found = 0;  ///< distinct labels (a GMM may leave components empty)
  double ari = std::numeric_limits<double>::quiet_NaN();
  double nmi = std::numeric_limits<double>::quiet_NaN();  ///< arithmetic mean normalisation (sklearn's default)
  double ami = std::numeric_limits<double>::quiet_NaN();
  /// Mean silhouette (Euclidean) on the clustering input; NaN when the
  /// clustering has fewer than 2 or more than N - 1 distinct labels.
  double silhouette = std::numeric_limits<double>::quiet_NaN();
  double accuracy = std::numeric_limits<double>::quiet_NaN();  ///< Hungarian-matched accuracy
  double inertia = std::numeric_limits<double>::quiet_NaN();      ///< KMeans only
  double lower_bound = std::numeric_limits<double>::quiet_NaN();  ///< GMM only: mean log-likelihood
  bool converged = false;
  int n_iter = 0;
  double seconds = 0.0;  ///< fit + metrics
  /// Non-empty when the fit failed (e.g. a covariance that is not positive
  /// definite); the metrics are then NaN and `labels` undefined.
  std::string error;
};

struct PcaSummary {
  /// Explained-variance ratios of the first min(10, N, D) components (of the
  /// total variance of the normalised rows).
  std::vector<double> explained_variance_ratio;
  /// Components fed to the clustering (0 when clustering the raw rows).
  int64_t dims = 0;
  /// Sum of the ratios of those `dims` components (1 for raw input).
  double cumulative_ratio = 1.0;
  reduce::PcaSolver solver = reduce::PcaSolver::kExact;  ///< the solver actually used
};

struct RepresentationAnalysis {
  int64_t n = 0, d = 0;  ///< rows and columns of x
  int64_t k = 0;         ///< clusters asked for
  /// Cos_Sim and the per-class within-class means, on the raw rows (not
  /// normalised, not reduced): cosine is scale-invariant per row, so
  /// normalisation would not change it, and reducing would.
  CosineResult cosine;
  PcaSummary pca;
  /// What KMeans and GMM saw: "pca50", "l2+pca50", "raw", "l2" ...
  std::string clustering_input;
  int64_t clustering_dims = 0;  ///< its columns
  ClusteringResult kmeans, gmm;
  /// [N, 2] float32 scores on the first two principal components (zero
  /// second column when D or N allows only one), for a PCA scatter plot.
  torch::Tensor pca2;
  /// Seconds per stage: "cosine", "pca", "kmeans", "gmm", "total".
  std::vector<std::pair<std::string, double>> seconds;
};

/// Analyses x [N, D] float32/float64 (any device; computed on the CPU, and
/// the clustering in float64) against labels [N] integer in
/// [0, num_classes):
/// 1. Cos_Sim: class_cosine_similarity(x, labels) on the raw rows.
/// 2. Rows normalised (opts.normalize), then PCA with
///    max(min(10, N, D), dims, min(2, N, D)) components, dims = min(pca_dims,
///    D, N - 1); its first `dims` scores (float64) are the clustering input
///    (or the normalised rows themselves when pca_dims = 0).
/// 3. KMeans(k, k-means++, n_init) and GMM(k, covariance, KMeans init) on the
///    clustering input, seeded as sklearn with random_state = seed; each is
///    scored by ARI, NMI, AMI, Hungarian accuracy against `labels` and the
///    Euclidean silhouette on the clustering input. A failing fit is
///    recorded in ClusteringResult::error and the other still runs.
/// Progress: stage "analyze", one event per step (note = the step).
/// Throws c10::Error: x not a finite non-empty 2-D float matrix (names the
/// first row holding NaN/Inf); N < 2; labels not 1-D integer with N entries
/// or outside [0, num_classes); num_classes < 1; k < 0 or k > N; pca_dims <
/// 0; kmeans_n_init, gmm_n_init, max_iter < 1; tol, reg_covar < 0;
/// silhouette_sample_size < 0; seed > 2^32-1; no class with 2 samples (the
/// cosine statistic is undefined).
///
/// Over several processes (`comm` a distributed::Communicator), every rank
/// passes all rows and the same options and gets the same result: with at
/// least 2 rows per rank, PCA (kExact with n >= 2d: the covariance route),
/// KMeans (k-means++ seeds drawn on rank 0), GMM (gmm_n_init 1: its KMeans
/// initialisation likewise) and the exact silhouette run on rank r's
/// contiguous block of rows (core::shard_range); the rest runs on every
/// rank. Equals one process up to float64 summation order.
RepresentationAnalysis analyze_representation(const torch::Tensor& x, const torch::Tensor& labels,
                                              int64_t num_classes, const AnalyzeOptions& opts,
                                              const core::ProgressFn& progress = {},
                                              core::Collectives& comm = core::single_process());

}  // namespace gradlens::analysis
