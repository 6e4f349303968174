#include "gradlens/cluster/gmm.h"
#include "cluster/same_partition.h"

#include "support/support.h"

#include <torch/types.h>

#include <cmath>

namespace gradlens::cluster {
namespace {

using test::SeededTest;

TEST_F(SeededTest, OneComponentIsTheSampleGaussian) {
  const auto x = torch::randn({200, 3}, torch::kFloat64) * torch::tensor({1.0, 2.0, 0.5}, torch::kFloat64) + 3.0;
  GmmOptions o;
  o.n_components = 1;
  const GaussianMixture gm = gmm_fit(x, o);
  const auto mean = x.mean(0);
  const auto xc = x - mean;
  auto cov = torch::matmul(xc.t(), xc) / 200.0;
  cov.diagonal().add_(1e-6);
  EXPECT_LT(test::max_abs_diff(gm.means[0], mean), 1e-12);
  EXPECT_LT(test::max_abs_diff(gm.covariances[0], cov), 1e-10);
  EXPECT_NEAR(gm.weights[0].item<double>(), 1.0, 1e-15);
  // Mean log-density of N(mean, cov): -0.5 (d ln 2pi + ln det cov + mean Mahalanobis).
  const auto maha = (torch::matmul(xc, torch::inverse(cov)) * xc).sum(1).mean().item<double>();
  const double expected = -0.5 * (3 * std::log(2 * M_PI) + torch::logdet(cov).item<double>() + maha);
  EXPECT_NEAR(gm.lower_bound, expected, 1e-10);
  EXPECT_NEAR(gmm_score(gm, x), expected, 1e-10);
  EXPECT_TRUE(gm.converged);
  EXPECT_EQ(gm.n_iter, 2);  // the second EM step changes nothing
  EXPECT_EQ(gmm_n_parameters(gm), 3 * 4 / 2 + 3);
}

TEST_F(SeededTest, SeparatedBlobsAllCovarianceTypes) {
  const auto truth = torch::arange(300, torch::kInt64) % 3;
  const auto centres = torch::tensor({0., 0., 10., 0., 0., 10.}, torch::kFloat64).view({3, 2});
  const auto x = centres.index_select(0, truth) + torch::randn({300, 2}, torch::kFloat64);
  for (auto type : {CovarianceType::kFull, CovarianceType::kTied, CovarianceType::kDiag, CovarianceType::kSpherical}) {
    GmmOptions o;
    o.n_components = 3;
    o.covariance_type = type;
    o.seed = 1;
    const GaussianMixture gm = gmm_fit(x.to(torch::kFloat32), o);
    EXPECT_TRUE(test::same_partition(truth, gmm_predict(gm, x)));
    const auto proba = gmm_predict_proba(gm, x);
    EXPECT_LT(test::max_abs_diff(proba.sum(1), torch::ones({300}, torch::kFloat64)), 1e-12);
    EXPECT_NEAR(gm.weights.sum().item<double>(), 1.0, 1e-12);
    const int64_t p = gmm_n_parameters(gm);
    const int64_t expected_p = type == CovarianceType::kFull ? 9 + 6 + 2
                             : type == CovarianceType::kTied ? 3 + 6 + 2
                             : type == CovarianceType::kDiag ? 6 + 6 + 2
                                                             : 3 + 6 + 2;
    EXPECT_EQ(p, expected_p);
    const double score = gmm_score(gm, x);
    EXPECT_NEAR(gmm_bic(gm, x), -2 * score * 300 + p * std::log(300.0), 1e-9);
    EXPECT_NEAR(gmm_aic(gm, x), -2 * score * 300 + 2 * p, 1e-9);
  }
}

TEST(GmmTest, FailedCholeskyNamesRegCovar) {
  // Component 1 gets no responsibility: its covariance is 0 without reg_covar.
  const auto x = torch::tensor({0., 0., 1., 0., 0., 1., 5., 5.}, torch::kFloat64).view({4, 2});
  GmmOptions o;
  o.n_components = 2;
  o.reg_covar = 0.0;
  o.init = GmmInit::kGiven;
  o.init_resp = torch::tensor({1., 0., 1., 0., 1., 0., 1., 0.}, torch::kFloat64).view({4, 2});
  for (auto type : {CovarianceType::kFull, CovarianceType::kDiag}) {
    o.covariance_type = type;
    GRADLENS_EXPECT_THROWS_WITH(gmm_fit(x, o), "reg_covar");
    GRADLENS_EXPECT_THROWS_WITH(gmm_fit(x, o), "increase reg_covar");
  }
  o.reg_covar = 1e-3;
  EXPECT_NO_THROW(gmm_fit(x, o));
}

TEST(GmmTest, Errors) {
  const auto x = torch::randn({5, 2});
  GmmOptions o;
  o.n_components = 6;
  GRADLENS_EXPECT_THROWS_WITH(gmm_fit(x, o), "larger than the number of rows (5)");
  o.n_components = 0;
  GRADLENS_EXPECT_THROWS_WITH(gmm_fit(x, o), "n_components must be >= 1");
  o.n_components = 2;
  auto bad = x.clone();
  bad[1][0] = -INFINITY;
  GRADLENS_EXPECT_THROWS_WITH(gmm_fit(bad, o), "row 1");
  GRADLENS_EXPECT_THROWS_WITH(gmm_fit(torch::zeros({5, 0}), o), "empty");
  o.init = GmmInit::kGiven;
  GRADLENS_EXPECT_THROWS_WITH(gmm_fit(x, o), "init_resp");
  o.init_resp = torch::ones({4, 2});
  GRADLENS_EXPECT_THROWS_WITH(gmm_fit(x, o), "init_resp has shape");
  o.init = GmmInit::kKMeans;
  const GaussianMixture gm = gmm_fit(x, o);
  GRADLENS_EXPECT_THROWS_WITH(gmm_predict(gm, torch::randn({3, 4})), "fitted on 2");
  GRADLENS_EXPECT_THROWS_WITH(gmm_predict(GaussianMixture{}, x), "not fitted");
}

}  // namespace
}  // namespace gradlens::cluster
