#include "gradlens/reduce/range_finder.h"

#include <ATen/Parallel.h>

#include "gradlens/core/blas.h"
#include "support/support.h"

namespace gradlens::reduce {
namespace {

using test::SeededTest;
class RangeFinderTest : public SeededTest {};

// max |A - Q Q^T A| / max |A|.
double residual(const torch::Tensor& q, const torch::Tensor& a) {
  return (a - torch::matmul(q, torch::matmul(q.t(), a))).abs().max().item<double>() / a.abs().max().item<double>();
}

TEST(LuPermutedLTest, HandFactoredTallAndWideMatrices) {
  // A = [[1, 2], [3, 4], [5, 6]] = (P L) U with U = [[5, 6], [0, 0.8]]
  // (pivots 5 and 0.8, multipliers 0.6, 0.2 and 0.5).
  const auto tall = torch::tensor({{1., 2.}, {3., 4.}, {5., 6.}}, torch::kFloat64);
  const auto want = torch::tensor({{0.2, 1.}, {0.6, 0.5}, {1., 0.}}, torch::kFloat64);
  EXPECT_LT(test::max_abs_diff(lu_permuted_l(tall), want), 1e-15);
  // Wide: [[1, 2, 3], [4, 5, 6]], pivot 4, multiplier 0.25: P L is 2 x 2.
  const auto wide = torch::tensor({{1., 2., 3.}, {4., 5., 6.}}, torch::kFloat64);
  EXPECT_LT(test::max_abs_diff(lu_permuted_l(wide), torch::tensor({{0.25, 1.}, {1., 0.}}, torch::kFloat64)), 1e-15);
  // A zero pivot (rank 1) is no error: the second column of L below the
  // zero pivot stays 0, as scipy.linalg.lu(ones((3, 2)), permute_l=True).
  const auto ones_pl = torch::tensor({{1., 0.}, {1., 1.}, {1., 0.}}, torch::kFloat64);
  EXPECT_LT(test::max_abs_diff(lu_permuted_l(torch::ones({3, 2}, torch::kFloat64)), ones_pl), 1e-15);
  std::vector<double> ones(6, 1.0);  // column-major 3 x 2
  ASSERT_TRUE(core::lapack_lu_permuted_l(3, 2, ones.data(), 3));
  EXPECT_EQ(ones, (std::vector<double>{1, 1, 1, 0, 1, 0}));
}

TEST_F(RangeFinderTest, RepeatedRowsAndASingleVectorLeaveTheTestMatrixAlone) {
  // 3 distinct rows, 6 test vectors: the LU meets zero pivots. And with
  // l = 1 the transposed q0 is a view of itself: it must still be copied.
  const auto a = torch::tensor({{1., 0., 2.}, {0., 1., 1.}, {1., 1., 3.}}, torch::kFloat64).repeat({4, 3});
  const auto q0 = torch::randn({9, 6}, torch::kFloat64);
  const auto q = randomized_range_finder(a, q0, 3, PowerIterationNormalizer::kLU);
  EXPECT_LT(residual(q.slice(1, 0, 2), a), 1e-12);  // rank 2: the first two columns span A
  for (int64_t l : {1, 6}) {
    const auto q1 = torch::randn({9, l}, torch::kFloat64);
    const auto before = q1.clone();
    randomized_range_finder(torch::randn({50, 9}, torch::kFloat64), q1, 3, PowerIterationNormalizer::kLU);
    EXPECT_TRUE(torch::equal(q1, before)) << "l = " << l;
  }
}

TEST_F(RangeFinderTest, SpansALowRankMatrixWithEveryNormalizer) {
  // Rank 8, 5000 x 60 (3 row blocks), 12 test vectors: any orthonormal Q of
  // the sketch captures A exactly.
  const auto a64 = torch::matmul(torch::randn({5000, 8}, torch::kFloat64), torch::randn({8, 60}, torch::kFloat64));
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    const auto a = a64.to(dtype);
    const auto q0 = torch::randn({60, 12}, torch::kFloat64);
    // float32 without a normaliser: the sketch's columns tend to the
    // dominant direction and the final QR loses some digits.
    const double tol = dtype == torch::kFloat64 ? 1e-12 : 2e-4;
    for (auto norm : {PowerIterationNormalizer::kAuto, PowerIterationNormalizer::kNone, PowerIterationNormalizer::kLU,
                      PowerIterationNormalizer::kQR}) {
      for (int n_iter : {0, 1, 3}) {
        const auto q = randomized_range_finder(a, q0, n_iter, norm);
        ASSERT_EQ(q.sizes(), (torch::IntArrayRef{5000, 12}));
        EXPECT_EQ(q.scalar_type(), dtype);
        EXPECT_LT(test::max_abs_diff(torch::matmul(q.t(), q), torch::eye(12, torch::kFloat64)), 10 * tol)
            << "n_iter " << n_iter << " normalizer " << static_cast<int>(norm);
        EXPECT_LT(residual(q.to(torch::kFloat64), a64), tol) << "n_iter " << n_iter;
      }
    }
  }
}

TEST_F(RangeFinderTest, PowerIterationsFindTheLeadingSubspace) {
  // A = U diag(s) V^T with s_j = 0.5^j: after 4 iterations with 6 vectors
  // for 3 components, the first three columns of U lie in range(Q) to about
  // (s_7 / s_3)^9 -- far below float64 rounding -- with LU or QR between
  // the products.
  const auto u = std::get<0>(torch::linalg_qr(torch::randn({3000, 40}, torch::kFloat64)));
  const auto v = std::get<0>(torch::linalg_qr(torch::randn({50, 40}, torch::kFloat64)));
  const auto s = torch::pow(0.5, torch::arange(40, torch::kFloat64));
  const auto a = torch::matmul(u * s, v.t());
  const auto q0 = torch::randn({50, 6}, torch::kFloat64);
  for (auto norm : {PowerIterationNormalizer::kLU, PowerIterationNormalizer::kQR}) {
    const auto q = randomized_range_finder(a, q0, 4, norm);
    const auto lead = u.slice(1, 0, 3);
    EXPECT_LT(test::max_abs_diff(torch::matmul(q, torch::matmul(q.t(), lead)), lead), 1e-10);
  }
}

TEST_F(RangeFinderTest, ResultDoesNotDependOnTheThreadCount) {
  const auto a = torch::randn({9000, 50});
  const auto q0 = torch::randn({50, 10}, torch::kFloat64);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto one = randomized_range_finder(a, q0, 3, PowerIterationNormalizer::kLU);
  const auto p1 = range_project(one, a);
  at::set_num_threads(2);
  const auto two = randomized_range_finder(a, q0, 3, PowerIterationNormalizer::kLU);
  const auto p2 = range_project(two, a);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one, two));
  EXPECT_TRUE(torch::equal(p1, p2));
}

TEST_F(RangeFinderTest, ProjectEqualsTheMatrixProduct) {
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    const auto a = torch::randn({9000, 30}, dtype);
    const auto q = torch::randn({9000, 7}, dtype);
    const auto want = torch::matmul(q.t().to(torch::kFloat64), a.to(torch::kFloat64));
    const double tol = dtype == torch::kFloat64 ? 1e-11 : 1e-3;  // sums of 9000 products of size ~1
    EXPECT_LT(test::max_abs_diff(range_project(q, a), want), tol);
  }
}

TEST_F(RangeFinderTest, MoreTestVectorsThanColumnsGiveABasisOfTheColumnSpace) {
  // l = 10 > c = 8: LibTorch's route; the LU of A^T Q [8, 10] keeps 8 columns.
  const auto a = torch::randn({30, 8}, torch::kFloat64);
  const auto q = randomized_range_finder(a, torch::randn({8, 10}, torch::kFloat64), 2, PowerIterationNormalizer::kLU);
  EXPECT_EQ(q.sizes(), (torch::IntArrayRef{30, 8}));
  EXPECT_LT(residual(q, a), 1e-12);
}

TEST(RangeFinderErrors, ShapesAndIterationsAreChecked) {
  GRADLENS_EXPECT_THROWS_WITH(
      randomized_range_finder(torch::randn({5, 4}), torch::randn({3, 2}), 1, PowerIterationNormalizer::kAuto),
      "q0 [c, l]");
  GRADLENS_EXPECT_THROWS_WITH(
      randomized_range_finder(torch::randn({5, 4}), torch::randn({4, 2}), -1, PowerIterationNormalizer::kAuto),
      "n_iter must be >= 0");
  GRADLENS_EXPECT_THROWS_WITH(range_project(torch::randn({5, 2}), torch::randn({4, 3})), "range_project");
}

}  // namespace
}  // namespace gradlens::reduce
