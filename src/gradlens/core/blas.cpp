#include "gradlens/core/blas.h"
#include <torch/types.h>
#include <ATen/Parallel.h>

#include <dlfcn.h>

#include <algorithm>
#include <limits>
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

}  // namespace

BlasThreadLimit::BlasThreadLimit(int threads) {
  using SetFn = void (*)(int);
  using GetFn = int (*)();
  auto set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  auto get = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (set == nullptr || get == nullptr) return;
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
  fn(&jobz, &range, &uplo, &n, a, &ilda, &vl, &vu, &il, &iu, &abstol, &found, w_all.data(), z, &n, isuppz.data(), &work_query,
     &query, &iwork_query, &query, &info);
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

}  // namespace gradlens::core
