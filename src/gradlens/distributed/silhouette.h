// Distributed silhouette: exact, by row blocks. Each rank scores its own rows
// against the all-gathered matrix; the per-sample sums are all-reduced.
#pragma once

#include <torch/types.h>

#include "gradlens/metrics/internal.h"

namespace gradlens::distributed {

class Communicator;

/// metrics::silhouette_samples of this rank's rows among the rows of all
/// ranks (rank order = row order): x_local [n_r, d] (n_r >= 1, same d and
/// dtype everywhere, finite), labels_local [n_r] integer. The rows and labels
/// are all-gathered (every rank holds N x d once, float64 per GEMM chunk of
/// chunk_rows rows x N); distances from this rank's rows to all rows give
/// each row's per-cluster sums, always with float64 products. Equal to
/// silhouette_samples on the gathered rows up to float64 summation order
/// (tested to 1e-9) when that takes float64 products too; for float32 data
/// with N >= 4096 it takes float32 products (SilhouetteOptions::
/// float64_products), and the two agree to ~1e-7. Returns [n_r]
/// float64. Throws c10::Error as silhouette_samples (on every rank), plus
/// shards of different widths or dtypes, an empty shard, and sample_size > 0
/// (subsample before distributing).
torch::Tensor silhouette_samples(Communicator& comm, const torch::Tensor& x_local, const torch::Tensor& labels_local,
                                 const metrics::SilhouetteOptions& opts = {});

/// Mean of distributed::silhouette_samples over all rows (all-reduced), the same
/// value on every rank.
double silhouette_score(Communicator& comm, const torch::Tensor& x_local, const torch::Tensor& labels_local,
                        const metrics::SilhouetteOptions& opts = {});

}  // namespace gradlens::distributed
