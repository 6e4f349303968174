#include "gradlens/core/blas.h"

#include <torch/types.h>

#include "support/support.h"

#include <cmath>
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
