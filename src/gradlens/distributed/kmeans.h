// Distributed KMeans: Lloyd iterations over row shards (one per rank), by
// all-reduce of the per-cluster float64 sums and counts, following
// cluster::kmeans_fit step for step (see src/gradlens/cluster/kmeans.h).
#pragma once

#include <torch/types.h>

#include "gradlens/cluster/kmeans.h"

namespace gradlens::distributed {

class Communicator;

/// kmeans_fit over the rows of all ranks (rank order = row order): every rank
/// passes its shard x_local [n_r, d] (n_r >= 1, same d and dtype everywhere)
/// and the same options. Supported inits:
///  - KMeansInit::kGiven: rank 0's opts.init_centroids are broadcast (the
///    other ranks' are ignored);
///  - KMeansInit::kKMeansPlusPlus with n_init = 1: the centred rows are
///    gathered to rank 0 (it must hold all N x d of them once), seeded there
///    by cluster::kmeans_plusplus_indices(., k, seed) exactly as kmeans_fit
///    seeds, and the centres broadcast.
/// Semantics equal kmeans_fit's: centring on the all-reduced float64 column
/// mean; tolerance tol * mean per-feature variance (all-reduced sum of
/// squared deviations); assignment argmin |c|^2 - 2 x.c in x's dtype; float64
/// sums; strict convergence when no row of any rank changed label; empty
/// clusters relocated to the globally farthest points (farthest first, ties
/// to the lower global row index). The only differences are in float64
/// summation order (per-rank partial sums, then the all-reduce), so sums,
/// mean, tolerance and inertia may differ from the single-process run in the
/// last float64 bits, which in practice leaves labels, n_iter and the float32
/// centroids identical (tested) and inertia equal to ~1e-12 relative.
/// Returns: centroids [k, d] (same on every rank), labels [n_r] of this
/// rank's rows, inertia summed over all rows, n_iter, converged.
/// Throws c10::Error as kmeans_fit, plus: an empty shard; shards of different
/// widths or dtypes; kRandom, or n_init > 1 with k-means++ (use kGiven).
cluster::KMeansResult kmeans_fit(Communicator& comm, const torch::Tensor& x_local,
                                 const cluster::KMeansOptions& opts);

}  // namespace gradlens::distributed
