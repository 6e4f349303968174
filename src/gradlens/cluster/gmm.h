// Gaussian mixture models fitted by EM, following scikit-learn 1.2's
// GaussianMixture step for step (full, tied, diag and spherical covariances).
#pragma once

#include <torch/types.h>

#include "gradlens/core/collectives.h"
#include "gradlens/core/progress.h"

#include <cstdint>
#include <functional>

namespace gradlens::cluster {

enum class CovarianceType {
  kFull,       ///< one [d, d] covariance per component
  kTied,       ///< one [d, d] covariance shared by all components
  kDiag,       ///< one diagonal ([d]) per component
  kSpherical,  ///< one variance per component
};

enum class GmmInit {
  /// Responsibilities from a KMeans(k, n_init=1, k-means++) labelling that
  /// draws from the mixture's random stream, exactly as sklearn's
  /// init_params="kmeans" (the default).
  kKMeans,
  kRandom,  ///< uniform random responsibilities, rows normalised (sklearn "random")
  kGiven,   ///< GmmOptions::init_resp
};

struct GmmOptions {
  int64_t n_components = 1;
  CovarianceType covariance_type = CovarianceType::kFull;
  /// EM stops when |change of the lower bound| < tol; the lower bound is the
  /// mean log-likelihood per sample.
  double tol = 1e-3;
  /// Added to the covariance diagonals for numerical stability.
  double reg_covar = 1e-6;
  int max_iter = 100;
  /// Initialisations; the one with the highest final lower bound wins.
  int n_init = 1;
  GmmInit init = GmmInit::kKMeans;
  /// numpy RandomState seed (0 .. 2^32-1), shared by all initialisations, as
  /// sklearn's random_state.
  uint64_t seed = 0;
  /// [N, k] non-negative responsibilities for GmmInit::kGiven.
  torch::Tensor init_resp;
  /// Optional overrides of the initial parameters computed from the
  /// responsibilities (sklearn weights_init, means_init, precisions_init):
  /// weights [k] summing to 1, means [k, d], precisions (inverse
  /// covariances) in the shape of GaussianMixture::covariances.
  torch::Tensor weights_init, means_init, precisions_init;
  /// Optional: one event per EM iteration (stage "gmm"), with the lower bound.
  core::ProgressFn progress;
};

/// A fitted mixture; every tensor is float64 on x's device (EM runs in
/// float64 whatever x's dtype).
struct GaussianMixture {
  CovarianceType covariance_type = CovarianceType::kFull;
  torch::Tensor weights;  ///< [k]
  torch::Tensor means;    ///< [k, d]
  /// full [k, d, d], tied [d, d], diag [k, d], spherical [k]
  torch::Tensor covariances;
  /// Cholesky factors of the precisions, same shapes (diag/spherical: 1/sqrt(var)).
  torch::Tensor precisions_cholesky;
  double lower_bound = 0.0;  ///< best run's final mean log-likelihood
  int n_iter = 0;            ///< EM iterations of the best run
  bool converged = false;    ///< the best run reached tol before max_iter
};

/// EM for a Gaussian mixture on x [N, d] float32/float64 (N >= 2).
/// Throws c10::Error: x not a finite non-empty 2-D float matrix (names the
/// first bad row) or N < 2; n_components < 1 or > N; tol < 0; reg_covar < 0;
/// max_iter < 1; n_init < 1; seed > 2^32-1; kGiven without a finite
/// non-negative [N, k] init_resp; mis-shaped *_init tensors; a covariance
/// that is not positive definite (the message names reg_covar and suggests a
/// larger value).
///
/// Over several processes (`comm` a distributed::Communicator), each rank
/// passes its rows x (rank order = row order; same d and dtype everywhere;
/// at least one row) and the same options, except that init_resp holds the
/// responsibilities of this rank's rows [n_r, k]; only init kGiven is
/// supported there (kKMeans and kRandom draw from one process's random
/// stream: seed with kmeans_fit over the same Communicator and pass one-hot
/// labels). The E-step runs on each rank's rows; the M-step all-reduces
/// (float64) Nk, sum r x and the covariance moments of sklearn's formulas
/// (full: sum r (x - mu)(x - mu)^T per component after the means, k d^2
/// values; tied: X^T X; diag/spherical: sum r x^2), and the log-likelihood.
/// Equals one process on the gathered rows with the same initial
/// responsibilities up to float64 summation order (tested to 1e-6 relative).
/// Every rank gets the same mixture; gmm_predict(result, x) gives its labels.
GaussianMixture gmm_fit(const torch::Tensor& x, const GmmOptions& opts,
                        core::Collectives& comm = core::single_process());

/// Per-sample log p(x) under the mixture: [N] float64. The functions below
/// throw c10::Error if x is not a finite [N, d] float matrix of the fitted d.
torch::Tensor gmm_score_samples(const GaussianMixture& gm, const torch::Tensor& x);
/// Mean of gmm_score_samples.
double gmm_score(const GaussianMixture& gm, const torch::Tensor& x);
/// Most probable component per row: [N] int64.
torch::Tensor gmm_predict(const GaussianMixture& gm, const torch::Tensor& x);
/// Posterior responsibilities: [N, k] float64, rows sum to 1.
torch::Tensor gmm_predict_proba(const GaussianMixture& gm, const torch::Tensor& x);
/// Free parameters: covariance + mean + (k - 1) weight parameters.
int64_t gmm_n_parameters(const GaussianMixture& gm);
/// Bayesian information criterion -2 N score + p ln N (lower is better).
double gmm_bic(const GaussianMixture& gm, const torch::Tensor& x);
/// Akaike information criterion -2 N score + 2 p (lower is better).
double gmm_aic(const GaussianMixture& gm, const torch::Tensor& x);

namespace detail {

/// Parameters during EM (prec_chol: Cholesky factors of the precisions).
struct GmmParams {
  torch::Tensor weights, means, covariances, prec_chol;
};
/// In place: a tensor of sums over this process's rows becomes the sum over
/// the rows of all shards (an all-reduce); empty in one process.
using GmmRowSum = std::function<void(torch::Tensor&)>;
/// gmm_fit's EM after its argument checks, on x64 ([n, d] float64, this
/// shard's rows): every sum over rows (responsibility moments Nk, sum r x,
/// sum r (x - mu)(x - mu)^T or sum r x^2 or X^T X, and the log-likelihood)
/// goes through sum_rows, and n_total is the row count over all shards.
/// With sum_rows set, CPU full/diag runs the plain (not the fused) path;
/// init_resp (kGiven) holds this shard's rows.
GaussianMixture gmm_em(const torch::Tensor& x64, const GmmOptions& opts, const GmmRowSum& sum_rows, int64_t n_total);

}  // namespace detail

}  // namespace gradlens::cluster
