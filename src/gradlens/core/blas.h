// Direct access to the process's BLAS (OpenBLAS under Debian's LibTorch) for
// hot loops that call many small GEMMs from inside at::parallel_for.
#pragma once
#include <cstdint>

namespace gradlens::core {

/// Sets the size of OpenBLAS's own pthread pool (openblas_set_num_threads)
/// for the whole process. Returns false, changing nothing, when the BLAS in
/// the process is not OpenBLAS with its own pthread pool (an OpenMP build
/// shares LibTorch's OpenMP threads and is left alone: its setter would
/// change their count). Throws c10::Error for threads < 1.
bool set_blas_threads(int threads);

/// OpenBLAS's current thread count, or 0 when set_blas_threads does not
/// apply (not OpenBLAS, or its OpenMP build).
int blas_threads();

/// While alive, limits OpenBLAS's thread pool to `threads` threads, and
/// restores the previous count on destruction, as threadpoolctl's
/// threadpool_limits(threads, user_api="blas") does around scikit-learn's
/// Lloyd loop. Use it around code that calls GEMMs from inside
/// at::parallel_for, so the BLAS threads do not compete with the OpenMP
/// ones. A no-op when the BLAS in the process is not OpenBLAS. The count is
/// process-wide: other threads calling BLAS meanwhile see the limit too.
class BlasThreadLimit {
 public:
  explicit BlasThreadLimit(int threads);
  ~BlasThreadLimit();
  BlasThreadLimit(const BlasThreadLimit&) = delete;
  BlasThreadLimit& operator=(const BlasThreadLimit&) = delete;

 private:
  void (*set_)(int) = nullptr;
  int previous_ = 0;
};

/// Row-major C[m, n] = alpha * op(A) op(B) + beta * C with op(A) [m, k] and
/// op(B) [k, n] (transposed when trans_a / trans_b), leading dimensions lda,
/// ldb, ldc, by the process's Fortran BLAS (sgemm_/dgemm_, looked up at run
/// time). Returns false, computing nothing, if the BLAS has no such symbol or
/// a size exceeds 32-bit BLAS ints; callers then fall back to torch::mm.
bool blas_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
bool blas_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
               int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

/// C[d, d] = alpha * A^T A + beta * C for a row-major A [rows, d] (leading
/// dimension lda) by dsyrk_, about half the work of the GEMM: only the upper
/// triangle of the row-major C (j >= i) is written. Returns false, computing
/// nothing, if the BLAS has no dsyrk_ or a size exceeds 32-bit BLAS ints.
bool blas_syrk_upper(int64_t rows, int64_t d, double alpha, const double* a, int64_t lda, double beta, double* c,
                     int64_t ldc);

/// The k largest eigenvalues and their eigenvectors of a symmetric d x d
/// float64 matrix `a` (leading dimension lda; its lower triangle is read and
/// the matrix is destroyed) by LAPACK's dsyevr with a range by index
/// (tridiagonal reduction, then bisection and inverse iteration for the
/// subset), which costs a fraction of a full eigendecomposition for k << d. w [k] gets the
/// eigenvalues in ascending order, z [k, d] (row-major) the matching unit
/// eigenvectors as rows. Returns false, computing nothing, if the process's
/// LAPACK has no dsyevr_ or a size exceeds 32-bit ints; throws c10::Error if
/// LAPACK reports a failure.
bool lapack_syevr_top(int64_t d, int64_t k, double* a, int64_t lda, double* w, double* z);

/// P L of the LU factorisation with partial pivoting A = P L U of a
/// column-major m x n matrix `a` (m >= n, leading dimension lda), in place:
/// `a` becomes the m x n unit lower-trapezoidal L with its rows permuted by
/// P, as scipy.linalg.lu(a, permute_l=True)[0], by LAPACK's ?getrf. A
/// singular U (an exactly zero pivot) is not an error: L is still defined.
/// Returns false, computing nothing, if the process's LAPACK has no ?getrf_
/// or a size exceeds 32-bit ints.
bool lapack_lu_permuted_l(int64_t m, int64_t n, float* a, int64_t lda);
bool lapack_lu_permuted_l(int64_t m, int64_t n, double* a, int64_t lda);

}  // namespace gradlens::core
