// Principal component analysis as scikit-learn 1.2's PCA: exact (covariance
// eigendecomposition or SVD) and randomized (Halko et al.) solvers, the same
// sign convention, whitening, transform and inverse transform.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>

#include "gradlens/core/collectives.h"
#include "gradlens/reduce/range_finder.h"

namespace gradlens::reduce {

enum class PcaSolver {
  /// Exact, by whichever is faster for the shape: kCovariance when
  /// n >= 2 d (a d x d Gram matrix summed in float64, O(n d^2) BLAS-3, then
  /// the k leading eigenpairs), kRowGram when n < d, else kFullSvd. All give
  /// sklearn's svd_solver="full" result up to float error. The covariance route loses
  /// accuracy only for singular values below ~1e-8 (float64 data) or ~1e-3
  /// (float32 data) of the largest; measured on float32 60000 x 784 data, 50
  /// components: explained variances within 1.8e-7 relative and components
  /// within 1.9e-7 of a float64 fit, where sklearn's float32 SVD is within
  /// 1.7e-6 and 1.3e-5.
  kExact,
  kFullSvd,     ///< SVD of the centred data in x's dtype (sklearn "full")
  kCovariance,  ///< eigendecomposition of X_c^T X_c (see pca_gram64)
  /// Wide data (n < d): the k leading eigenpairs (U, S^2) of the n x n
  /// matrix X_c X_c^T, formed in float64 (dsyrk), then V^T = U^T X_c / S;
  /// sklearn's u-based signs come from U itself. An error in U is magnified
  /// in V by about (S_1 / S_k)^3 times float64 rounding, so when the last
  /// kept singular value is below 1e-3 of the largest (or zero, k > rank) the
  /// fit is redone by kFullSvd, and `solver` says so.
  kRowGram,
  /// sklearn "randomized": randomized_svd with n_oversamples extra vectors,
  /// n_iter power iterations (-1 = sklearn "auto": 7 if n_components <
  /// 0.1 min(n, d), else 4), the test matrix drawn as numpy
  /// RandomState(seed).normal, and the power iterations normalised as
  /// sklearn's (power_iteration_normalizer, "auto" by default: LU for more
  /// than 2 iterations), so the same seed gives sklearn's result up to float
  /// error (see randomized_range_finder).
  kRandomized,
};

struct PcaOptions {
  /// Components kept; 0 means min(n, d). Must be <= min(n, d).
  int64_t n_components = 0;
  PcaSolver solver = PcaSolver::kExact;
  /// Scale the scores to unit variance (sklearn whiten=True).
  bool whiten = false;
  int64_t n_oversamples = 10;
  int n_iter = -1;
  /// kRandomized: sklearn's power_iteration_normalizer.
  PowerIterationNormalizer power_iteration_normalizer = PowerIterationNormalizer::kAuto;
  /// numpy RandomState seed (0 .. 2^32-1); kRandomized only.
  uint64_t seed = 0;
};

/// A fitted PCA. Tensors are in x's dtype and on x's device.
struct Pca {
  torch::Tensor mean;                      ///< [d]
  torch::Tensor components;                ///< [k, d], orthonormal rows, sklearn's svd_flip signs (u-based)
  torch::Tensor explained_variance;        ///< [k], S^2 / (n - 1)
  torch::Tensor explained_variance_ratio;  ///< [k], over the total variance
  torch::Tensor singular_values;           ///< [k]
  double noise_variance = 0.0;  ///< mean variance of the discarded directions (0 if k = min(n, d))
  int64_t n_samples = 0;
  bool whiten = false;
  PcaSolver solver = PcaSolver::kExact;  ///< the solver actually used (never kExact)
};

/// Fits a PCA to x [n, d] float32/float64 (n >= 2).
/// Throws c10::Error: x not a finite 2-D float matrix with >= 2 rows and >= 1
/// column (names the first non-finite row); n_components < 0 or > min(n, d);
/// n_oversamples < 0; n_iter < -1; seed > 2^32-1.
///
/// Over several processes (`comm` a distributed::Communicator), each rank
/// passes its rows x (rank order = row order; n_r >= 1, same d and dtype
/// everywhere, finite) and the same options, and gets the same Pca: the
/// covariance solver only (kExact or kCovariance; kFullSvd and kRandomized
/// are refused: gather the rows), with the float64 column sums and the
/// centred Gram matrix all-reduced (one d x d float64 all-reduce: 8 d^2
/// bytes), eigh on every rank, and sklearn's svd_flip signs from each rank's
/// largest |x_c v| per component (the lowest row index wins ties, as argmax).
/// Equals pca_fit on the concatenated rows with kCovariance up to float64
/// summation order (tested to 1e-6 relative). Also throws on an empty shard
/// or shards of different widths or dtypes (naming both ranks).
Pca pca_fit(const torch::Tensor& x, const PcaOptions& opts = {},
            core::Collectives& comm = core::single_process());

/// Scores (x - mean) components^T, divided by sqrt(explained_variance) when
/// whitening: x [m, d] -> [m, k]. Throws c10::Error if x is not a finite
/// [m, d] float matrix.
torch::Tensor pca_transform(const Pca& pca, const torch::Tensor& x);

/// Back to the input space: z [m, k] -> [m, d]. Throws c10::Error if z is not
/// a finite [m, k] float matrix.
torch::Tensor pca_inverse_transform(const Pca& pca, const torch::Tensor& z);

namespace detail {

/// The pieces of pca_fit's covariance solver (over several ranks the sums and
/// the Gram matrix are all-reduced between them).

/// Column sums of x [n, d] in float64 [d] (no float64 copy of x on CPU).
torch::Tensor pca_column_sums64(const torch::Tensor& x);
/// X_c^T X_c as float64 [d, d] for X_c = x - mean (x [n, d] float32/float64,
/// mean [d]), centred block by block (no centred copy of x). float64 data:
/// float64 throughout. float32 data: products in float32 by sgemm per block
/// of 8192 rows, the blocks summed in float64 (float32 accuracy, as
/// scikit-learn's float32 SVD; ~3x faster than float64 products).
/// `scratch` (optional, from pca_scratch) is a work buffer shared with
/// pca_column_extremes, so that the second pass faults no fresh pages in.
torch::Tensor pca_gram64(const torch::Tensor& x, const torch::Tensor& mean, const torch::Tensor& scratch = {});
/// For each column j of u = (x - mean) v64 [n, k] (v64 float64 [d, k]; u in
/// x's dtype): the largest |u_ij| and u_ij at its first occurrence (lowest
/// row), as float64 [2, k]. sklearn's svd_flip sign of component j is the
/// sign of row 1.
torch::Tensor pca_column_extremes(const torch::Tensor& x, const torch::Tensor& mean, const torch::Tensor& v64,
                                  const torch::Tensor& scratch = {});
/// The work buffer for pca_gram64 and pca_column_extremes of x with k
/// components (undefined off the CPU).
torch::Tensor pca_scratch(const torch::Tensor& x, int64_t k);

/// Singular values and flipped components of an exact solver.
struct PcaFactors {
  torch::Tensor s, vt;  ///< s [k] (descending), vt [k, d]; signs already flipped
  torch::Tensor all_s;  ///< every singular value, when available (exact solvers)
  double total_ss = -1.0;   ///< else the sum of all squared singular values, if known (>= 0)
  double residual_ss = 0.0;  ///< with total_ss: the part beyond the first k (float64 eigenvalues)
};
/// Factors from the centred Gram matrix (float64 [d, d]): eigenvalues
/// descending and clamped at 0, and the first k eigenvectors flipped by
/// signs_of(v_k) (v_k float64 [d, k] -> signs [k]). Results in `dtype`. On
/// the CPU with k < d only the k leading eigenpairs are computed (LAPACK
/// dsyevr), and total_ss is the trace; otherwise a full eigh and all_s.
PcaFactors pca_factors_from_gram(const torch::Tensor& gram,
                                 const std::function<torch::Tensor(const torch::Tensor&)>& signs_of, int64_t k,
                                 torch::ScalarType dtype);
/// Fills p's components, singular values, explained variance (and ratio) and
/// noise variance from f for k of max_k components; p.n_samples must be set.
/// xc (the centred data) is read only when neither f.all_s nor f.total_ss is
/// set. The noise variance is the mean of the other max_k - k eigenvalues
/// (from all_s, or residual_ss / (max_k - k) with total_ss).
void pca_finish(Pca& p, const PcaFactors& f, int64_t k, int64_t max_k, const torch::Tensor& xc);

}  // namespace detail

}  // namespace gradlens::reduce
