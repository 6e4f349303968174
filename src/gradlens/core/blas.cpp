#include "gradlens/core/blas.h"
#include <torch/types.h>
#include <ATen/Parallel.h>

#include <dlfcn.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

namespace gradlens::core {

namespace {

template <typename T>
using FortranGemm = void (*)(const char*, const char*, const int*, const int*, const int*, const T*, const T*,
                             const int*, const T*, const int*, const T*, T*, const int*);

template <typename T>
FortranGemm<T> blas_gemm_symbol() {
  // Resolved once per process; dlsym is thread-safe.
  static const FortranGemm<T> fn =
      reinterpret_cast<FortranGemm<T>>(dlsym(RTLD_DEFAULT, std::is_same_v<T, float> ? "sgemm_" : "dgemm_"));
  return fn;
}

template <typename T>
bool blas_gemm_impl(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                    const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const FortranGemm<T> fn = blas_gemm_symbol<T>();
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  if (fn == nullptr || m > kMax || n > kMax || k > kMax || lda > kMax || ldb > kMax || ldc > kMax) return false;
  if (m == 0 || n == 0) return true;
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
  const char ta = trans_b ? 'T' : 'N';
  const char tb = trans_a ? 'T' : 'N';
  const int im = static_cast<int>(n), in = static_cast<int>(m), ik = static_cast<int>(k);
  const int ilda = static_cast<int>(std::max<int64_t>(1, ldb)), ildb = static_cast<int>(std::max<int64_t>(1, lda));
  const int ildc = static_cast<int>(std::max<int64_t>(1, ldc));
  fn(&ta, &tb, &im, &in, &ik, &alpha, b, &ilda, a, &ildb, &beta, c, &ildc);
  return true;
}

template <typename T>
bool lu_permuted_l_impl(int64_t m, int64_t n, T* a, int64_t lda) {
  using FortranGetrf = void (*)(const int*, const int*, T*, const int*, int*, int*);
  static const FortranGetrf fn =
      reinterpret_cast<FortranGetrf>(dlsym(RTLD_DEFAULT, std::is_same_v<T, float> ? "sgetrf_" : "dgetrf_"));
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  TORCH_CHECK(m >= n && n >= 0 && lda >= std::max<int64_t>(1, m),
              "lapack_lu_permuted_l: needs m >= n >= 0 and lda >= m (m ", m, ", n ", n, ", lda ", lda, ")");
  if (fn == nullptr || m > kMax || lda > kMax) return false;
  if (n == 0) return true;
  const int im = static_cast<int>(m), in = static_cast<int>(n), ilda = static_cast<int>(lda);
  std::vector<int> ipiv(static_cast<size_t>(n));
  int info = 0;
  fn(&im, &in, a, &ilda, ipiv.data(), &info);
  // info > 0: U(info, info) is exactly zero; L is complete all the same.
  TORCH_CHECK(info >= 0, "lapack_lu_permuted_l: ?getrf rejected argument ", -info);
  // L: ones on the diagonal, zeros above it (U's part).
  for (int64_t j = 0; j < n; ++j) {
    T* col = a + j * lda;
    std::fill(col, col + j, T(0));
    col[j] = T(1);
  }
  // A = P L U with P = P_1 P_2 ... P_n (P_i swaps rows i and ipiv(i)), so
  // P L applies the swaps to L's rows from the last to the first.
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t p = ipiv[static_cast<size_t>(i)] - 1;
    if (p == i) continue;
    for (int64_t j = 0; j < n; ++j) std::swap(a[i + j * lda], a[p + j * lda]);
  }
  return true;
}

using SetThreadsFn = void (*)(int);
using GetThreadsFn = int (*)();

// OpenBLAS's thread-count functions, looked up once per process; both null
// when the BLAS is another library, or an OpenBLAS built on OpenMP
// (openblas_get_parallel() == 2, Debian's libopenblas0-openmp): there its
// openblas_set_num_threads also sets the caller's OpenMP thread count
// (0.3.21's blas_server_omp.c), which would shrink LibTorch's own pool.
std::pair<SetThreadsFn, GetThreadsFn> openblas_thread_fns() {
  static const std::pair<SetThreadsFn, GetThreadsFn> fns = [] {
    using ParallelFn = int (*)();
    auto set = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    auto get = reinterpret_cast<GetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    auto parallel = reinterpret_cast<ParallelFn>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
    if (set == nullptr || get == nullptr || (parallel != nullptr && parallel() == 2)) {
      return std::pair<SetThreadsFn, GetThreadsFn>{nullptr, nullptr};
    }
    return std::pair<SetThreadsFn, GetThreadsFn>{set, get};
  }();
  return fns;
}

}  // namespace

bool set_blas_threads(int threads) {
  TORCH_CHECK(threads >= 1, "set_blas_threads: threads must be >= 1, got ", threads);
  const auto [set, get] = openblas_thread_fns();
  if (set == nullptr) return false;
  set(threads);
  return true;
}

int blas_threads() {
  const auto [set, get] = openblas_thread_fns();
  return get == nullptr ? 0 : get();
}

BlasThreadLimit::BlasThreadLimit(int threads) {
  const auto [set, get] = openblas_thread_fns();
  if (set == nullptr) return;
  previous_ = get();
  if (previous_ == threads) return;
  set_ = set;
  set_(threads);
}

BlasThreadLimit::~BlasThreadLimit() {
  if (set_ != nullptr) set_(previous_);
}

bool blas_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  return blas_gemm_impl<float>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

bool blas_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
               int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  return blas_gemm_impl<double>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

bool blas_syrk_upper(int64_t rows, int64_t d, double alpha, const double* a, int64_t lda, double beta, double* c,
                     int64_t ldc) {
  using FortranSyrk = void (*)(const char*, const char*, const int*, const int*, const double*, const double*,
                               const int*, const double*, double*, const int*);
  static const FortranSyrk fn = reinterpret_cast<FortranSyrk>(dlsym(RTLD_DEFAULT, "dsyrk_"));
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  if (fn == nullptr || rows > kMax || d > kMax || lda > kMax || ldc > kMax) return false;
  if (d == 0) return true;
  // Row-major A is column-major A^T [d, rows]: C = A^T (A^T)^T, trans 'N';
  // the row-major upper triangle is the column-major lower one.
  const char uplo = 'L', trans = 'N';
  const int in = static_cast<int>(d), ik = static_cast<int>(rows);
  const int ilda = static_cast<int>(std::max<int64_t>(1, lda)), ildc = static_cast<int>(std::max<int64_t>(1, ldc));
  fn(&uplo, &trans, &in, &ik, &alpha, a, &ilda, &beta, c, &ildc);
  return true;
}

bool lapack_syevr_top(int64_t d, int64_t k, double* a, int64_t lda, double* w, double* z) {
  using FortranSyevr = void (*)(const char*, const char*, const char*, const int*, double*, const int*, const double*,
                                const double*, const int*, const int*, const double*, int*, double*, double*,
                                const int*, int*, double*, const int*, int*, const int*, int*);
  static const FortranSyevr fn = reinterpret_cast<FortranSyevr>(dlsym(RTLD_DEFAULT, "dsyevr_"));
  constexpr int64_t kMax = std::numeric_limits<int>::max() / 16;
  if (fn == nullptr || d > kMax || lda > kMax || k < 1 || k > d) return false;
  const char jobz = 'V', range = 'I', uplo = 'L';  // row-major upper = column-major lower; symmetric anyway
  const int n = static_cast<int>(d), ilda = static_cast<int>(std::max<int64_t>(1, lda));
  const int il = static_cast<int>(d - k + 1), iu = static_cast<int>(d);
  const double vl = 0.0, vu = 0.0, abstol = 0.0;  // abstol 0: LAPACK's default tolerance
  int found = 0, info = 0;
  std::vector<int> isuppz(2 * static_cast<size_t>(k));
  // dsyevr's W must hold N entries (LAPACK: "W (output) DOUBLE PRECISION
  // array, dimension (N)"), even though only the first M are returned: some
  // of its paths use the rest. The caller's w holds k.
  std::vector<double> w_all(static_cast<size_t>(n));
  // Workspace query, then the call.
  double work_query = 0.0;
  int iwork_query = 0;
  const int query = -1;
  fn(&jobz, &range, &uplo, &n, a, &ilda, &vl, &vu, &il, &iu, &abstol, &found, w_all.data(), z, &n, isuppz.data(),
     &work_query, &query, &iwork_query, &query, &info);
  TORCH_CHECK(info == 0, "lapack_syevr_top: dsyevr workspace query failed (info ", info, ")");
  const int lwork = static_cast<int>(work_query), liwork = iwork_query;
  std::vector<double> work(static_cast<size_t>(std::max(1, lwork)));
  std::vector<int> iwork(static_cast<size_t>(std::max(1, liwork)));
  fn(&jobz, &range, &uplo, &n, a, &ilda, &vl, &vu, &il, &iu, &abstol, &found, w_all.data(), z, &n, isuppz.data(),
     work.data(), &lwork, iwork.data(), &liwork, &info);
  TORCH_CHECK(info == 0 && found == k, "lapack_syevr_top: dsyevr failed (info ", info, ", ", found, " of ", k,
              " eigenvalues found)");
  std::copy(w_all.begin(), w_all.begin() + k, w);
  return true;
}

bool lapack_lu_permuted_l(int64_t m, int64_t n, float* a, int64_t lda) {
  return lu_permuted_l_impl<float>(m, n, a, lda);
}

bool lapack_lu_permuted_l(int64_t m, int64_t n, double* a, int64_t lda) {
  return lu_permuted_l_impl<double>(m, n, a, lda);
}

}  // namespace gradlens::core
