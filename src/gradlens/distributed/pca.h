// Distributed PCA over row shards: the exact covariance solver of
// reduce::pca_fit, by all-reduce of sufficient statistics (float64 column
// sums and the centred Gram matrix X_c^T X_c).
#pragma once

#include <torch/types.h>

#include "gradlens/reduce/pca.h"

namespace gradlens::distributed {

class Communicator;

/// reduce::pca_fit with the covariance solver over the rows of all ranks
/// (rank order = row order): every rank passes its shard x_local [n_r, d]
/// (n_r >= 1, same d and dtype everywhere, finite) and the same options.
/// Steps: all-reduce of [column sums | n] (float64) -> mean (in x's dtype, as
/// pca_fit); each rank's Gram matrix of its centred rows, all-reduced (one
/// float64 d x d all-reduce: 8 d^2 bytes); eigh on every rank; sklearn's
/// svd_flip signs from each rank's largest |x_c v| per component, all-gathered
/// (the first rank with the global maximum wins, i.e. the lowest row index,
/// as argmax). Equals pca_fit(all rows, solver kCovariance) up to float64
/// summation order (tested to 1e-6 relative; the same when kExact picks the
/// covariance route, n >= 2d). Returns the same Pca on every rank.
/// Throws c10::Error as pca_fit, plus: an empty shard; shards of different
/// widths or dtypes; solver kFullSvd or kRandomized (gather the rows and use
/// reduce::pca_fit); whiten is supported.
reduce::Pca pca_fit(Communicator& comm, const torch::Tensor& x_local, const reduce::PcaOptions& opts = {});

}  // namespace gradlens::distributed
