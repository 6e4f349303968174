// Internal clustering criteria over a data matrix and a labeling, as
// scikit-learn 1.2: silhouette, Calinski-Harabasz and Davies-Bouldin.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <utility>

#include "gradlens/core/collectives.h"

namespace gradlens::metrics {

enum class SilhouetteMetric {
  kEuclidean,  ///< |x - y|, via |x|^2 + |y|^2 - 2 x.y in float64 (see float64_products), clipped at 0
  kCosine,     ///< 1 - cos(x, y) clipped to [0, 2]; zero rows have cos 0
};

struct SilhouetteOptions {
  SilhouetteMetric metric = SilhouetteMetric::kEuclidean;
  /// Rows of the distance matrix computed at a time; memory is
  /// O(chunk_rows * N). 0 picks about 64 MiB worth of rows.
  int64_t chunk_rows = 0;
  /// silhouette_score only: if > 0 and < N, score a random subset of this
  /// many samples, drawn exactly as sklearn's silhouette_score(...,
  /// sample_size, random_state=seed) does (numpy RandomState(seed)
  /// .permutation(N)[:sample_size]), so the two agree on the same seed.
  int64_t sample_size = 0;
  uint32_t seed = 0;
  /// Euclidean silhouette of float32 data with N >= 4096 rows on the CPU:
  /// the dot products are float32 GEMMs (2x the float64 throughput) of the
  /// centred rows, and every pair whose squared distance is below 5% of
  /// the rows' squared norms (where rounding would matter) is summed again
  /// exactly in float64; a 512 x 512 tile with more than 2% of such pairs
  /// (tight, well-separated clusters) is done in float64 whole. Tested
  /// within 1e-7 (measured 1.5e-8) of the float64 route. true: float64
  /// products always.
  bool float64_products = false;
};

/// Common conventions: x is [N, d] float32/float64 (computed in float64, but
/// for the float32 silhouette products of SilhouetteOptions),
/// labels [N] integer with any values. The number of distinct labels must be
/// in [2, N-1] (as sklearn). Throws c10::Error on: x not a finite non-empty
/// 2-D float matrix (names the first non-finite row), labels not 1-D integer,
/// a label count different from N, a bad number of distinct labels, negative
/// chunk_rows or sample_size.

/// Per-sample silhouette s_i = (b_i - a_i) / max(a_i, b_i), a_i the mean
/// distance to the other members of its cluster, b_i the smallest mean
/// distance to another cluster. Singletons (and 0/0 cases) score 0. Exact:
/// the distance matrix is formed in row blocks of chunk_rows, so memory is
/// O(chunk_rows * N). The self-distance is 0. Returns [N] float64 on x's device.
///
/// Over several processes (`comm` a distributed::Communicator), each rank
/// passes its rows x and their labels (rank order = row order; n_r >= 1,
/// same d and dtype everywhere) and gets the silhouettes of its own rows
/// [n_r]: the rows and labels are all-gathered (every rank holds N x d once)
/// and this rank's rows are scored against all rows with float64 products.
/// Equal to the one-process result on the concatenated rows up to float64
/// summation order (tested to 1e-9) when that takes float64 products too
/// (see SilhouetteOptions::float64_products; else they agree to ~1e-7).
/// Also throws on an empty shard, shards of different widths or dtypes, and
/// sample_size > 0 (subsample before distributing).
torch::Tensor silhouette_samples(const torch::Tensor& x, const torch::Tensor& labels,
                                 const SilhouetteOptions& opts = {},
                                 core::Collectives& comm = core::single_process());

/// Mean of silhouette_samples (over the `sample_size` subset if set); over
/// several processes the mean over all ranks' rows, the same on every rank.
double silhouette_score(const torch::Tensor& x, const torch::Tensor& labels, const SilhouetteOptions& opts = {},
                        core::Collectives& comm = core::single_process());

/// Calinski-Harabasz: [between dispersion / (k-1)] / [within / (N-k)]; 1 if
/// the within dispersion is 0.
double calinski_harabasz_score(const torch::Tensor& x, const torch::Tensor& labels);

/// Davies-Bouldin: mean over clusters of max_j (s_i + s_j) / d(c_i, c_j), s
/// the mean distance to the centroid. 0 if all s or all centroid distances
/// are within 1e-8 of 0 (as sklearn's np.allclose); pairs of coincident
/// centroids are ignored.
double davies_bouldin_score(const torch::Tensor& x, const torch::Tensor& labels);

namespace detail {

/// Pieces of silhouette_samples (one process and several).

/// Dense label codes 0..k-1 [N] int64 and k; throws c10::Error naming `fn`
/// unless 2 <= k <= n - 1.
std::pair<torch::Tensor, int64_t> silhouette_codes(const torch::Tensor& labels, int64_t n, const char* fn);
/// Sums of the distances from rows [begin, end) of x [N, d] to the rows of
/// each cluster: [end - begin, k] float64 (self-distance 0), by GEMMs of
/// chunk_rows rows (0: about 64 MiB) against all N rows.
torch::Tensor silhouette_block_sums(const torch::Tensor& x, const torch::Tensor& codes, int64_t k, bool cosine,
                                    int64_t begin, int64_t end, int64_t chunk_rows);
/// s_i from the per-cluster distance sums [m, k] of m rows with codes
/// own_codes [m], given the cluster sizes freq [k] float64.
torch::Tensor silhouette_from_sums(const torch::Tensor& sums, const torch::Tensor& own_codes,
                                   const torch::Tensor& freq);

}  // namespace detail

}  // namespace gradlens::metrics
