#include "gradlens/analysis/cosine.h"

#include "support/support.h"

#include <torch/types.h>

#include <cmath>
#include <map>
#include <vector>

namespace gradlens::analysis {
namespace {

using test::SeededTest;

// Direct pair loop over i < j, with cos against zero vectors = 0.
double pair_cos(const torch::Tensor& u, int64_t i, int64_t j) {
  const auto a = u[i].to(torch::kFloat64);
  const auto b = u[j].to(torch::kFloat64);
  const double na = a.norm().item<double>();
  const double nb = b.norm().item<double>();
  if (na == 0 || nb == 0) return 0.0;
  return (a * b).sum().item<double>() / (na * nb);
}

TEST(CosineTest, HandComputedTinyCase) {
  const double s = std::sqrt(2.0);
  // class 5: (1,0) (0,1) (1,1); class -2: (2,0) (1,-1) (0,0); class 7: (3,4).
  const auto u = torch::tensor({1., 0., 0., 1., 1., 1., 2., 0., 1., -1., 0., 0., 3., 4.}).view({7, 2});
  const auto labels = torch::tensor({5, 5, 5, -2, -2, -2, 7}, torch::kInt64);
  const CosineResult r = class_cosine_similarity(u, labels);
  ASSERT_EQ(r.classes.size(0), 3);
  EXPECT_EQ(r.classes[0].item<int64_t>(), -2);
  EXPECT_EQ(r.classes[1].item<int64_t>(), 5);
  EXPECT_EQ(r.classes[2].item<int64_t>(), 7);
  const double w5 = (2 / s) / 3;       // pairs: 0, 1/sqrt2, 1/sqrt2
  const double wm2 = (1 / s) / 3;      // pairs: 1/sqrt2, 0, 0 (zero vector)
  EXPECT_NEAR(r.within[0].item<double>(), wm2, 1e-15);
  EXPECT_NEAR(r.within[1].item<double>(), w5, 1e-15);
  EXPECT_TRUE(std::isnan(r.within[2].item<double>()));
  EXPECT_NEAR(r.cos_sim, (w5 + wm2) / 2, 1e-15);
  EXPECT_EQ(r.classes_used, 2);
  EXPECT_EQ(r.classes_skipped, 1);
  EXPECT_EQ(r.zero_vectors, 1);
  EXPECT_EQ(r.class_counts[0].item<int64_t>(), 3);
  // class 5 vs class -2: (1 + 1/sqrt2) / 9; class 5 vs 7: (7/5 + 7/(5 sqrt2)) / 3.
  EXPECT_NEAR(r.class_matrix[1][0].item<double>(), (1 + 1 / s) / 9, 1e-15);
  EXPECT_NEAR(r.class_matrix[0][1].item<double>(), (1 + 1 / s) / 9, 1e-15);
  EXPECT_NEAR(r.class_matrix[1][2].item<double>(), (7. / 5 + 7 / (5 * s)) / 3, 1e-15);
  EXPECT_NEAR(r.class_matrix[0][2].item<double>(), (3. / 5 - 1. / (5 * s)) / 3, 1e-15);
  EXPECT_TRUE(std::isnan(r.class_matrix[2][2].item<double>()));
}

TEST_F(SeededTest, CosineMatchesDirectPairLoopInChunks) {
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    auto u = torch::randn({90, 6}, dtype) + 0.5;
    u[3].zero_();
    u[40].zero_();
    const auto labels = torch::randint(0, 4, {90}, torch::kInt64) * 10 - 7;
    CosineOptions opts;
    opts.chunk_rows = 7;
    const CosineResult r = class_cosine_similarity(u, labels, opts);
    EXPECT_EQ(r.zero_vectors, 2);
    const int64_t c = r.classes.size(0);
    std::map<int64_t, int64_t> pos;
    for (int64_t k = 0; k < c; ++k) pos[r.classes[k].item<int64_t>()] = k;
    std::vector<double> sum(c * c, 0.0), cnt(c * c, 0.0);
    for (int64_t i = 0; i < 90; ++i) {
      for (int64_t j = 0; j < 90; ++j) {
        if (i == j) continue;
        const int64_t a = pos[labels[i].item<int64_t>()], b = pos[labels[j].item<int64_t>()];
        sum[a * c + b] += pair_cos(u, i, j);
        cnt[a * c + b] += 1;
      }
    }
    double mean_within = 0;
    for (int64_t a = 0; a < c; ++a) {
      mean_within += sum[a * c + a] / cnt[a * c + a] / c;
      for (int64_t b = 0; b < c; ++b) {
        EXPECT_NEAR(r.class_matrix[a][b].item<double>(), sum[a * c + b] / cnt[a * c + b], 1e-12);
      }
    }
    EXPECT_NEAR(r.cos_sim, mean_within, 1e-12);
    // Chunking does not change the result beyond rounding.
    const CosineResult whole = class_cosine_similarity(u, labels);
    EXPECT_NEAR(whole.cos_sim, r.cos_sim, 1e-14);
  }
}

TEST(CosineTest, PairwiseCosineMatchesLoop) {
  const auto a = torch::tensor({1., 0., 0., 0., 3., 4.}).view({3, 2});
  const auto p = pairwise_cosine(a, a);
  EXPECT_DOUBLE_EQ(p[0][2].item<double>(), 0.6);
  EXPECT_DOUBLE_EQ(p[1][1].item<double>(), 0.0);  // zero vector
  EXPECT_DOUBLE_EQ(p[2][2].item<double>(), 1.0);
}

TEST(CosineTest, Errors) {
  auto u = torch::ones({4, 3});
  const auto labels = torch::tensor({0, 0, 1, 1}, torch::kInt64);
  u[2][1] = std::nan("");
  GRADLENS_EXPECT_THROWS_WITH(class_cosine_similarity(u, labels), "row 2");
  GRADLENS_EXPECT_THROWS_WITH(class_cosine_similarity(torch::ones({4, 3}), torch::tensor({0, 1}, torch::kInt64)),
                              "2 labels for 4 rows");
  GRADLENS_EXPECT_THROWS_WITH(class_cosine_similarity(torch::ones({0, 3}), torch::zeros({0}, torch::kInt64)),
                              "empty");
  GRADLENS_EXPECT_THROWS_WITH(class_cosine_similarity(torch::ones({4, 0}), labels), "empty");
  GRADLENS_EXPECT_THROWS_WITH(class_cosine_similarity(torch::ones({2, 3}), torch::tensor({0, 1}, torch::kInt64)),
                              "no class has 2");
  GRADLENS_EXPECT_THROWS_WITH(class_cosine_similarity(torch::ones({4, 3}), labels.to(torch::kFloat32)), "integer");
}

}  // namespace
}  // namespace gradlens::analysis
