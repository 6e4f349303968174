// K-means (Lloyd) with k-means++ seeding, following scikit-learn 1.2's KMeans
// (algorithm="lloyd") step for step, with a faiss-style options/result API.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <utility>

#include "gradlens/core/collectives.h"
#include "gradlens/core/progress.h"

#include <cstdint>

namespace gradlens::core {
class NumpyRandomState;
}

namespace gradlens::cluster {

enum class KMeansInit {
  kKMeansPlusPlus,  ///< greedy k-means++ with 2 + floor(ln k) local trials
  kRandom,          ///< k distinct random rows
  kGiven,           ///< KMeansOptions::init_centroids
};

struct KMeansOptions {
  int64_t k = 8;
  /// Independent seedings; the run with the lowest inertia wins (a later run
  /// replaces the best only if its inertia is lower and its partition is not
  /// the same up to renaming, as sklearn). Default 1, as faiss and sklearn >=
  /// 1.4's n_init="auto" for k-means++; sklearn 1.2's default is 10. kGiven
  /// always runs once.
  int n_init = 1;
  int max_iter = 300;
  /// Relative tolerance: the run stops when the summed squared centre shift
  /// is <= tol * mean(per-feature variance of x) (sklearn's _tolerance).
  double tol = 1e-4;
  /// numpy RandomState seed (0 .. 2^32-1): all runs draw from one stream, so
  /// kmeans_fit(x, {k, n_init, seed}) seeds exactly as
  /// sklearn.cluster.KMeans(k, n_init=n_init, random_state=seed).
  uint64_t seed = 0;
  KMeansInit init = KMeansInit::kKMeansPlusPlus;
  /// [k, d] initial centres for KMeansInit::kGiven (any float dtype).
  torch::Tensor init_centroids;
  /// Rows per distance block; memory is O(chunk_rows * k). Must be >= 1.
  int64_t chunk_rows = 4096;
  /// Optional: one event per Lloyd iteration (stage "kmeans").
  core::ProgressFn progress;
};

struct KMeansResult {
  torch::Tensor centroids;  ///< [k, d], x's dtype and device
  torch::Tensor labels;     ///< [N] int64 in [0, k)
  double inertia = 0.0;     ///< sum of squared distances to the assigned centre (float64 sum)
  int n_iter = 0;           ///< Lloyd iterations of the best run
  /// True if the best run stopped before max_iter: labels unchanged (strict)
  /// or centre shift within tol.
  bool converged = false;
  int best_init = 0;  ///< which of the n_init runs won
};

/// Lloyd's algorithm as sklearn 1.2: x is centred on its column mean first;
/// each iteration assigns every row to the centre minimising |c|^2 - 2 x.c
/// (dot products in x's dtype, by row blocks, ties to the lower index: for
/// float32 data with k <= 16 (AVX-512) or k <= 32 (AVX2) by the small-k
/// kernel of kmeans_kernel.h, else by BLAS GEMMs),
/// recomputes centres (float64 sums), relocates each empty cluster to the
/// farthest point from its centre (farthest first), then stops on unchanged
/// labels or on the tol test; otherwise a final assignment matches the
/// returned centres. x: [N, d] float32/float64.
/// Throws c10::Error: x not a finite non-empty 2-D float matrix (names the
/// first bad row); k < 1 or k > N; n_init < 1; max_iter < 1; tol < 0;
/// chunk_rows < 1; seed > 2^32-1; kGiven without a finite [k, d]
/// init_centroids.
///
/// Over several processes (`comm` a distributed::Communicator), each rank
/// passes its rows x (rank order = row order; same d and dtype everywhere;
/// at least one row) and the same options, and gets the labels of its rows,
/// the same centroids and the inertia over all rows: centring and tolerance
/// from all-reduced float64 sums, the per-cluster sums, counts and changed
/// labels all-reduced in one collective per iteration, empty clusters
/// relocated to the globally farthest rows (ties to the lower global row).
/// Only init kGiven (rank 0's centres) or kKMeansPlusPlus (the centred rows
/// gathered once to rank 0, which draws every run's seeds from one stream;
/// any n_init, the best run chosen as in one process) are supported there. The
/// results equal one process's on the concatenated rows up to float64
/// summation order (in practice the same labels, n_iter and float32
/// centroids, and the inertia to ~1e-12 relative; tested).
KMeansResult kmeans_fit(const torch::Tensor& x, const KMeansOptions& opts,
                        core::Collectives& comm = core::single_process());

/// Index of the nearest centre for each row: x [N, d], centroids [k, d] ->
/// [N] int64 (argmin of |c|^2 - 2 x.c in x's dtype, ties to the lower index).
/// Throws c10::Error on non-finite or mis-shaped inputs.
torch::Tensor kmeans_predict(const torch::Tensor& x, const torch::Tensor& centroids, int64_t chunk_rows = 4096);

/// The k-means++ seeding alone (sklearn's kmeans_plusplus on centred data):
/// x [N, d] -> [k] int64 row indices of the chosen centres.
torch::Tensor kmeans_plusplus_indices(const torch::Tensor& x, int64_t k, uint64_t seed);

namespace detail {

/// kmeans_fit drawing its seeds from `rng` instead of a fresh
/// RandomState(opts.seed), as sklearn's GaussianMixture hands its RandomState
/// to KMeans. Same checks and errors as kmeans_fit.
KMeansResult kmeans_fit_with_rng(const torch::Tensor& x, const KMeansOptions& opts, core::NumpyRandomState& rng,
                                 core::Collectives& comm = core::single_process());

/// Sum over rows of |x_i - c_{labels_i}|^2 in float64, fixed row blocks added
/// in order (the same value for any thread count): KMeansResult::inertia.
/// x [N, d] and centers [k, d] of one float dtype, labels int64 [N].
double kmeans_inertia(const torch::Tensor& x, const torch::Tensor& centers, const torch::Tensor& labels,
                      int64_t chunk_rows);

/// Lloyd's M-step inputs: float64 per-cluster sums of the rows [k, d] (added
/// by chunks of chunk_rows rows) and counts [k], for labels [N] in [0, k).
std::pair<torch::Tensor, torch::Tensor> kmeans_cluster_sums(const torch::Tensor& x, const torch::Tensor& labels,
                                                            int64_t k, int64_t chunk_rows);

/// |x_i - c_{labels_i}|^2 in float64 [N] (empty-cluster relocation).
torch::Tensor kmeans_row_sq_dist(const torch::Tensor& x, const torch::Tensor& centers, const torch::Tensor& labels,
                                 int64_t chunk_rows);

/// centers becomes sums / counts (empty clusters: sums, i.e. 0) in centers'
/// dtype; reports the progress event of Lloyd iteration `iteration` (0-based)
/// of run `run_index` when opts.progress is set; returns the squared centre
/// shift (float64).
double kmeans_update_centers(torch::Tensor& centers, const torch::Tensor& sums, const torch::Tensor& counts,
                             const KMeansOptions& opts, int iteration, int run_index,
                             std::chrono::steady_clock::time_point t0);

}  // namespace detail

}  // namespace gradlens::cluster
