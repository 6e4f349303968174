#include "gradlens/reduce/pca.h"

#include "support/support.h"

#include <torch/types.h>

namespace gradlens::reduce {
namespace {

using test::SeededTest;

TEST(PcaTest, HandComputedTwoDimensional) {
  // Coordinates a = (3, -1, -2, 0) along u and b = (0, 2, -1, -1) along v
  // (u, v orthonormal, 30 degrees): a and b are centred and orthogonal, so the
  // sample variances (n - 1 = 3) are 14/3 and 2, singular values sqrt(14) and
  // sqrt(6), and the largest |score| of each component is positive at +u, +v.
  const double c = std::cos(M_PI / 6), s = std::sin(M_PI / 6);
  const auto u = torch::tensor({c, s}, torch::kFloat64);
  const auto v = torch::tensor({-s, c}, torch::kFloat64);
  const auto a = torch::tensor({3., -1., -2., 0.}, torch::kFloat64).unsqueeze(1);
  const auto b = torch::tensor({0., 2., -1., -1.}, torch::kFloat64).unsqueeze(1);
  const auto x = a * u + b * v + torch::tensor({5.0, -1.0}, torch::kFloat64);
  for (auto solver : {PcaSolver::kFullSvd, PcaSolver::kCovariance, PcaSolver::kRowGram, PcaSolver::kRandomized}) {
    PcaOptions o;
    o.solver = solver;
    const Pca p = pca_fit(x, o);
    EXPECT_LT(test::max_abs_diff(p.mean, torch::tensor({5.0, -1.0}, torch::kFloat64)), 1e-12);
    EXPECT_NEAR(p.explained_variance[0].item<double>(), 14.0 / 3.0, 1e-12);
    EXPECT_NEAR(p.explained_variance[1].item<double>(), 2.0, 1e-12);
    EXPECT_NEAR(p.explained_variance_ratio[0].item<double>(), 0.7, 1e-12);
    EXPECT_NEAR(p.singular_values[0].item<double>(), std::sqrt(14.0), 1e-12);
    EXPECT_NEAR(p.singular_values[1].item<double>(), std::sqrt(6.0), 1e-12);
    EXPECT_EQ(p.noise_variance, 0.0);
    EXPECT_LT(test::max_abs_diff(p.components[0], u), 1e-12);
    EXPECT_LT(test::max_abs_diff(p.components[1], v), 1e-12);
    const auto z = pca_transform(p, x);
    EXPECT_LT(test::max_abs_diff(z, torch::cat({a, b}, 1)), 1e-12);
    EXPECT_LT(test::max_abs_diff(pca_inverse_transform(p, z), x), 1e-12);
  }
}

TEST_F(SeededTest, SolversAgreeAndWhiteningGivesUnitVariance) {
  const auto x = torch::randn({300, 12}, torch::kFloat64) * torch::linspace(0.2, 5.0, 12, torch::kFloat64) +
                 torch::randn({12}, torch::kFloat64);
  PcaOptions o;
  o.n_components = 5;
  o.solver = PcaSolver::kFullSvd;
  const Pca a = pca_fit(x, o);
  o.solver = PcaSolver::kCovariance;
  const Pca b = pca_fit(x, o);
  o.solver = PcaSolver::kExact;
  EXPECT_EQ(pca_fit(x, o).solver, PcaSolver::kCovariance);  // n >= 2 d
  EXPECT_LT(test::max_abs_diff(a.components, b.components), 1e-10);
  EXPECT_LT(test::max_abs_diff(a.explained_variance, b.explained_variance), 1e-10);
  EXPECT_NEAR(a.noise_variance, b.noise_variance, 1e-10);
  // Orthonormal components.
  EXPECT_LT(test::max_abs_diff(torch::matmul(a.components, a.components.t()), torch::eye(5, torch::kFloat64)), 1e-12);
  o.whiten = true;
  o.solver = PcaSolver::kFullSvd;
  const Pca w = pca_fit(x, o);
  const auto z = pca_transform(w, x);
  EXPECT_LT(test::max_abs_diff((z - z.mean(0)).pow(2).sum(0) / 299.0, torch::ones({5}, torch::kFloat64)), 1e-10);
  // Whitened round trip equals the projection onto the 5 components.
  EXPECT_LT(test::max_abs_diff(pca_inverse_transform(w, z), pca_inverse_transform(a, pca_transform(a, x))), 1e-10);
  // float32 stays float32.
  const Pca f = pca_fit(x.to(torch::kFloat32), o);
  EXPECT_EQ(f.components.scalar_type(), torch::kFloat32);
  EXPECT_EQ(pca_transform(f, x.to(torch::kFloat32)).scalar_type(), torch::kFloat32);
}

TEST_F(SeededTest, WideDataTakesTheRowGramRouteAndEqualsTheFullSvd) {
  // n < d: the exact solver decomposes the n x n matrix X_c X_c^T.
  const auto x = torch::randn({60, 300}, torch::kFloat64) * torch::linspace(0.5, 3.0, 300, torch::kFloat64) +
                 torch::randn({300}, torch::kFloat64);
  for (const int64_t k : {10, 0}) {  // 0: all 60 components (a full eigh instead of dsyevr)
    PcaOptions o;
    o.n_components = k;
    o.solver = PcaSolver::kFullSvd;
    const Pca svd = pca_fit(x, o);
    o.solver = PcaSolver::kExact;
    const Pca gram = pca_fit(x, o);
    EXPECT_EQ(gram.solver, k == 0 ? PcaSolver::kFullSvd : PcaSolver::kRowGram) << k;
    EXPECT_LT(test::max_abs_diff(gram.components, svd.components), 1e-10) << k;  // signs included
    EXPECT_LT(test::max_abs_diff(gram.singular_values, svd.singular_values), 1e-9) << k;
    EXPECT_LT(test::max_abs_diff(gram.explained_variance_ratio, svd.explained_variance_ratio), 1e-12) << k;
    EXPECT_NEAR(gram.noise_variance, svd.noise_variance, 1e-10) << k;
  }
  // float32 data: float64 Gram, float32 results near the float64 fit.
  PcaOptions o;
  o.n_components = 10;
  const Pca f = pca_fit(x.to(torch::kFloat32), o);
  EXPECT_EQ(f.solver, PcaSolver::kRowGram);
  EXPECT_EQ(f.components.scalar_type(), torch::kFloat32);
  EXPECT_LT(test::max_abs_diff(f.components.to(torch::kFloat64), pca_fit(x, o).components), 1e-5);
  // Rank 3 with 5 components asked: the 4th and 5th singular values are
  // rounding noise, so the row route would divide by them; it hands over
  // to the full SVD, whose components stay orthonormal.
  const auto low = torch::matmul(torch::randn({40, 3}, torch::kFloat64), torch::randn({3, 200}, torch::kFloat64));
  o.n_components = 5;
  const Pca r = pca_fit(low, o);
  EXPECT_EQ(r.solver, PcaSolver::kFullSvd);
  EXPECT_LT(test::max_abs_diff(torch::matmul(r.components, r.components.t()), torch::eye(5, torch::kFloat64)), 1e-10);
  o.n_components = 3;
  EXPECT_EQ(pca_fit(low, o).solver, PcaSolver::kRowGram);
}

TEST_F(SeededTest, Float32DataKeepsFloat32AccuracyAndLeadingEigenpairsEqualFullEigh) {
  // float32 data: the Gram matrix is sgemm'd per block of 8192 rows and the
  // blocks summed in float64 (3 full blocks and a tail here). Against the
  // float64 fit of the very same numbers, the leading variances (down to
  // 0.05 of the largest) keep ~float32 accuracy; the large mean (10) checks
  // that the blocks are centred before the products.
  const int64_t d = 40;
  const auto scale = torch::pow(0.85, torch::arange(d, torch::kFloat64)) * 4;
  const auto q = std::get<0>(torch::linalg_qr(torch::randn({d, d}, torch::kFloat64)));
  const auto x32 = (torch::matmul(torch::randn({30000, d}, torch::kFloat64) * scale, q) + 10.0).to(torch::kFloat32);
  const auto x64 = x32.to(torch::kFloat64);
  PcaOptions o;
  o.n_components = 10;
  const Pca f = pca_fit(x32, o);
  const Pca g = pca_fit(x64, o);
  ASSERT_EQ(f.solver, PcaSolver::kCovariance);
  const auto rel = [](const torch::Tensor& a, const torch::Tensor& b) {
    return ((a.to(torch::kFloat64) - b).abs() / b.abs()).max().item<double>();
  };
  EXPECT_LT(rel(f.explained_variance, g.explained_variance), 1e-5);
  EXPECT_LT(rel(f.mean, g.mean), 1e-6);
  EXPECT_LT(test::max_abs_diff(f.components.to(torch::kFloat64), g.components), 1e-4);  // signs included
  EXPECT_NEAR(f.noise_variance, g.noise_variance, 1e-4 * g.noise_variance);
  EXPECT_NEAR(f.explained_variance_ratio.sum().item<double>(), g.explained_variance_ratio.sum().item<double>(), 1e-6);
  // The k leading eigenpairs (dsyevr by index; total variance from the
  // trace) equal a full eigendecomposition's (n_components = d).
  o.n_components = d;
  const Pca all = pca_fit(x64, o);
  EXPECT_LT(test::max_abs_diff(all.components.slice(0, 0, 10), g.components), 1e-10);
  EXPECT_LT(rel(all.explained_variance.slice(0, 0, 10), g.explained_variance), 1e-12);
  EXPECT_LT(test::max_abs_diff(all.explained_variance_ratio.slice(0, 0, 10), g.explained_variance_ratio), 1e-12);
  EXPECT_NEAR(all.explained_variance.slice(0, 10).mean().item<double>(), g.noise_variance, 1e-9 * g.noise_variance);
}

TEST(PcaTest, Errors) {
  const auto x = torch::randn({10, 4});
  PcaOptions o;
  o.n_components = 5;
  GRADLENS_EXPECT_THROWS_WITH(pca_fit(x, o), "min(n_samples, n_features) = 4");
  o.n_components = -1;
  GRADLENS_EXPECT_THROWS_WITH(pca_fit(x, o), "n_components = -1");
  auto bad = x.clone();
  bad[7][2] = NAN;
  GRADLENS_EXPECT_THROWS_WITH(pca_fit(bad), "row 7");
  GRADLENS_EXPECT_THROWS_WITH(pca_fit(torch::zeros({0, 4})), "empty");
  GRADLENS_EXPECT_THROWS_WITH(pca_fit(torch::zeros({1, 4})), "at least 2");
  const Pca p = pca_fit(x);
  GRADLENS_EXPECT_THROWS_WITH(pca_transform(p, torch::randn({3, 5})), "expects 4");
  GRADLENS_EXPECT_THROWS_WITH(pca_inverse_transform(p, torch::randn({3, 3})), "expects 4");
}

}  // namespace
}  // namespace gradlens::reduce
