#include "gradlens/core/blas.h"

#include <torch/types.h>

#include "support/support.h"

#include <dlfcn.h>

#include <cmath>
#include <cstdlib>
#include <vector>

namespace gradlens::core {
namespace {

TEST(BlasTest, LuPermutedLOfAHandFactoredMatrix) {
  // A = [[1, 2], [3, 4], [5, 6]]: pivot 5 (row 3), multipliers 0.6 and 0.2,
  // then pivot 0.8 (row 3 again), multiplier 0.4 / 0.8 = 0.5. A = (P L) U
  // with U = [[5, 6], [0, 0.8]] and P L = [[0.2, 1], [0.6, 0.5], [1, 0]].
  std::vector<double> a = {1, 3, 5, 2, 4, 6};  // column-major 3 x 2
  ASSERT_TRUE(lapack_lu_permuted_l(3, 2, a.data(), 3));
  const std::vector<double> want = {0.2, 0.6, 1.0, 1.0, 0.5, 0.0};
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], want[i], 1e-15) << i;
  // float32, with a leading dimension beyond m (the padding is untouched).
  std::vector<float> f = {1, 3, 5, -7, 2, 4, 6, -7};
  ASSERT_TRUE(lapack_lu_permuted_l(3, 2, f.data(), 4));
  EXPECT_EQ(f[3], -7.0f);
  EXPECT_EQ(f[7], -7.0f);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(f[i], want[i], 1e-6);
    EXPECT_NEAR(f[4 + i], want[3 + i], 1e-6);
  }
  EXPECT_THROW(lapack_lu_permuted_l(2, 3, a.data(), 2), c10::Error);  // needs m >= n
}

// Re-runs OpenBLAS's kernel selection with OPENBLAS_CORETYPE = name.
bool force_openblas_core(const char* name) {
  using VoidFn = void (*)();
  const auto quit = reinterpret_cast<VoidFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
  const auto init = reinterpret_cast<VoidFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
  if (quit == nullptr || init == nullptr) return false;
  setenv("OPENBLAS_CORETYPE", name, 1);
  quit();
  init();
  unsetenv("OPENBLAS_CORETYPE");
  return true;
}

// sgemm, dgemm, dsyrk and dgetrf results of the kernels in use, each as its
// largest deviation from LibTorch's float64 result relative to the result's
// largest entry.
std::vector<double> product_errors() {
  torch::manual_seed(11);
  const auto a = torch::randn({300, 200}, torch::kFloat64);
  const auto b = torch::randn({200, 150}, torch::kFloat64);
  auto rel = [](const torch::Tensor& x, const torch::Tensor& ref) {
    return (x.to(torch::kFloat64) - ref).abs().max().item<double>() / ref.abs().max().item<double>();
  };
  const auto ab = torch::matmul(a, b);
  auto a32 = a.to(torch::kFloat), b32 = b.to(torch::kFloat);
  auto c32 = torch::empty({300, 150}, torch::kFloat);
  auto c64 = torch::empty({300, 150}, torch::kFloat64);
  auto g = torch::zeros({200, 200}, torch::kFloat64);
  EXPECT_TRUE(blas_gemm(false, false, 300, 150, 200, 1.0f, a32.data_ptr<float>(), 200, b32.data_ptr<float>(), 150,
                        0.0f, c32.data_ptr<float>(), 150));
  EXPECT_TRUE(blas_gemm(false, false, 300, 150, 200, 1.0, a.data_ptr<double>(), 200, b.data_ptr<double>(), 150, 0.0,
                        c64.data_ptr<double>(), 150));
  EXPECT_TRUE(blas_syrk_upper(300, 200, 1.0, a.data_ptr<double>(), 200, 0.0, g.data_ptr<double>(), 200));
  // P L from ?getrf: A = (P L) U with U (least squares) upper triangular.
  auto lu = a.t().contiguous();  // column-major a
  EXPECT_TRUE(lapack_lu_permuted_l(300, 200, lu.data_ptr<double>(), 300));
  const auto pl = lu.t();
  const auto u = std::get<0>(torch::linalg_lstsq(pl, a));
  return {rel(c32, ab), rel(c64, ab), rel(g.triu(), torch::matmul(a.t(), a).triu()),
          rel(torch::matmul(pl, u), a), u.tril(-1).abs().max().item<double>() / u.abs().max().item<double>()};
}

TEST(BlasTest, SelectBlasKernelsSwitchesAvx2KernelsToAvx512WhereTheCpuHasIt) {
  if (blas_core_name().empty() || !force_openblas_core("Haswell")) GTEST_SKIP() << "not a DYNAMIC_ARCH OpenBLAS";
  ASSERT_EQ(blas_core_name(), "Haswell");
  const auto before = product_errors();
  // A user's OPENBLAS_CORETYPE is kept.
  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  EXPECT_EQ(select_blas_kernels(), "Haswell");
  unsetenv("OPENBLAS_CORETYPE");
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  const std::string after = select_blas_kernels();
  EXPECT_EQ(after, avx512 ? "SkylakeX" : "Haswell");
  EXPECT_EQ(select_blas_kernels(), after);  // nothing more to do
  const auto now = product_errors();
  const std::vector<double> tol = {1e-5, 1e-13, 1e-13, 1e-12, 1e-12};
  for (size_t i = 0; i < tol.size(); ++i) {
    EXPECT_LT(before[i], tol[i]) << "product " << i << " with Haswell kernels";
    EXPECT_LT(now[i], tol[i]) << "product " << i << " with " << after << " kernels";
  }
}

TEST(BlasTest, GemmRowMajorTransposesEqualTorch) {
  torch::manual_seed(3);
  const auto a = torch::randn({5, 7}, torch::kFloat64);
  const auto b = torch::randn({5, 4}, torch::kFloat64);
  auto c = torch::full({7, 4}, 1.0, torch::kFloat64);
  // C = 2 A^T B + 1 C
  ASSERT_TRUE(blas_gemm(true, false, 7, 4, 5, 2.0, a.data_ptr<double>(), 7, b.data_ptr<double>(), 4, 1.0,
                        c.data_ptr<double>(), 4));
  EXPECT_LT((c - (2 * torch::matmul(a.t(), b) + 1)).abs().max().item<double>(), 1e-12);
}

TEST(BlasTest, SyevrTopGivesTheLeadingEigenpairsInAscendingOrder) {
  // Q diag(1, 2, 3, 4, 5) Q^T for Q a Householder reflection I - 2 h h^T
  // (h unit): eigenvalue j + 1 has eigenvector Q e_j. The top k = 2 are 4 and
  // 5 with vectors Q e_3 and Q e_4, up to sign.
  const int64_t d = 5;
  auto h = torch::tensor({1.0, -2.0, 0.5, 3.0, 1.0}, torch::kFloat64);
  h = h / h.norm();
  const auto q = torch::eye(d, torch::kFloat64) - 2 * torch::outer(h, h);
  const auto m = torch::matmul(torch::matmul(q, torch::diag(torch::arange(1, d + 1, torch::kFloat64))), q.t());
  auto a = m.clone();
  std::vector<double> w(2), z(2 * d);
  ASSERT_TRUE(lapack_syevr_top(d, 2, a.data_ptr<double>(), d, w.data(), z.data()));
  EXPECT_NEAR(w[0], 4.0, 1e-12);
  EXPECT_NEAR(w[1], 5.0, 1e-12);
  for (int j = 0; j < 2; ++j) {
    const auto v = torch::from_blob(z.data() + j * d, {d}, torch::kFloat64);
    const auto want = q.select(1, 3 + j);
    EXPECT_NEAR(std::abs(torch::dot(v, want).item<double>()), 1.0, 1e-12) << "eigenvector " << j;
  }
  EXPECT_FALSE(lapack_syevr_top(d, 0, a.data_ptr<double>(), d, w.data(), z.data()));  // k out of range
}

TEST(BlasTest, SyevrTopWritesOnlyKEigenvalues) {
  // dsyevr uses an N-long W internally; lapack_syevr_top must hand the
  // caller exactly k values. Guards after w[k - 1] and z[k d - 1] must stay
  // untouched (a 60 x 60 Gram matrix of rank 40, the 10 leading eigenpairs; the
  // eigenvalues equal a full eigh's).
  torch::manual_seed(4);
  const int64_t d = 60, k = 10, guard = 64;
  // Rank 3: the leading 10 include 7 of the 57 (near-)zero eigenvalues, a
  // cluster that takes dsyevr off its MRRR path.
  const auto x = torch::matmul(torch::randn({d, 3}, torch::kFloat64), torch::randn({3, 200}, torch::kFloat64));
  const auto g = torch::matmul(x, x.t());
  auto a = g.clone();
  std::vector<double> w(k + guard, -7.0), z(k * d + guard, -7.0);
  ASSERT_TRUE(lapack_syevr_top(d, k, a.data_ptr<double>(), d, w.data(), z.data()));
  for (int64_t i = k; i < k + guard; ++i) ASSERT_EQ(w[i], -7.0) << "w[" << i << "] overwritten";
  for (int64_t i = k * d; i < k * d + guard; ++i) ASSERT_EQ(z[i], -7.0) << "z[" << i << "] overwritten";
  const auto all = torch::linalg_eigvalsh(g);  // ascending
  for (int64_t j = 0; j < k; ++j) EXPECT_NEAR(w[j], all[d - k + j].item<double>(), 1e-9 * all[-1].item<double>());
}

}  // namespace
}  // namespace gradlens::core
