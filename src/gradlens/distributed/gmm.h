// Distributed Gaussian mixtures: cluster::gmm_fit's EM over row shards, by
// all-reduce of the responsibility moments.
#pragma once

#include <torch/types.h>

#include "gradlens/cluster/gmm.h"

namespace gradlens::distributed {

class Communicator;

/// cluster::gmm_fit over the rows of all ranks (rank order = row order):
/// every rank passes its shard x_local [n_r, d] (n_r >= 1, same d and dtype
/// everywhere, finite) and the same options, except that init_resp holds the
/// responsibilities of this rank's rows [n_r, k]. The E-step runs on each
/// rank's rows; the M-step all-reduces (float64) Nk, sum r x and the
/// covariance moments of sklearn's formulas (full: sum r (x - mu)(x - mu)^T
/// per component after the means, k d^2 values; tied: X^T X; diag/spherical:
/// sum r x^2), and the log-likelihood. Equals gmm_fit on the gathered rows
/// with the same initial responsibilities (and *_init overrides) up to
/// float64 summation order (tested to 1e-6 relative; gmm_fit's fused CPU
/// path for full/diag sums in yet another order). Returns the same mixture on
/// every rank; cluster::gmm_predict(result, x_local) gives this rank's labels.
/// Throws c10::Error as gmm_fit, plus: an empty shard; shards of different
/// widths or dtypes; init other than kGiven (kKMeans and kRandom draw from one
/// process's random stream: seed with cluster::kmeans_fit over the Communicator and pass one-hot
/// labels as init_resp).
cluster::GaussianMixture gmm_fit(Communicator& comm, const torch::Tensor& x_local, const cluster::GmmOptions& opts);

}  // namespace gradlens::distributed
