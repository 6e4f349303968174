#include "gradlens/core/blas.h"
#include <torch/types.h>
#include <ATen/Parallel.h>

#include <dlfcn.h>

#include <limits>

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

}  // namespace gradlens::core
