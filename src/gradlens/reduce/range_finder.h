// The randomized range finder of randomized PCA (Halko, Martinsson and Tropp
// 2011, algorithm 4.4), as scikit-learn 1.2's randomized_range_finder:
// power iterations Q <- normalise(A Q), Q <- normalise(A^T Q), then the QR
// factor of A Q.
#pragma once

#include <torch/types.h>

namespace gradlens::reduce {

/// How the power iterations keep Q well conditioned (sklearn's
/// power_iteration_normalizer).
enum class PowerIterationNormalizer {
  kAuto,  ///< sklearn's "auto": kNone for n_iter <= 2, else kLU
  kNone,  ///< plain products (loses precision for many iterations)
  kLU,    ///< Q = P L of Q's LU factorisation (scipy.linalg.lu, permute_l=True)
  kQR,    ///< Q = the orthonormal factor of Q's QR factorisation
};

/// An orthonormal [m, min(m, l)] basis Q of the range of
/// (A A^T)^n_iter A Q0 for a [m, c] and the test matrix q0 [c, l] (copied
/// to a's dtype and device: the caller's q0 is never written), with
/// `normalizer` between the products (kAuto resolved as sklearn). On the
/// CPU with OpenBLAS-style BLAS/LAPACK symbols (and l <= min(m, c)), every
/// product runs as single-threaded GEMMs over blocks of A's rows on
/// LibTorch's OpenMP threads and the LU by ?getrf on Q's column-major
/// storage; the result does not depend on the thread count. Elsewhere,
/// LibTorch's matmul, linalg_lu_factor_ex and linalg_qr.
torch::Tensor randomized_range_finder(const torch::Tensor& a, const torch::Tensor& q0, int n_iter,
                                      PowerIterationNormalizer normalizer);

/// Q^T A [l, c] for q [m, l] and a [m, c] (row-blocked partial products
/// summed in block order on the CPU, as in randomized_range_finder).
torch::Tensor range_project(const torch::Tensor& q, const torch::Tensor& a);

/// scipy.linalg.lu(y, permute_l=True)[0] for y [m, n]: P L, [m, min(m, n)],
/// by LibTorch's linalg_lu_factor_ex (any device). An exactly zero pivot is
/// no error, as in scipy.
torch::Tensor lu_permuted_l(const torch::Tensor& y);

}  // namespace gradlens::reduce
