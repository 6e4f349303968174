#include "gradlens/core/blas.h"

#include <torch/types.h>

#include "support/support.h"

#include <cmath>
#include <vector>

namespace gradlens::core {
namespace {

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

}  // namespace
}  // namespace gradlens::core
