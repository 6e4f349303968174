#include "gradlens/analysis/misclassification.h"

#include <torch/types.h>

#include <cmath>

#include "support/support.h"

namespace gradlens::analysis {
namespace {

using test::SeededTest;

torch::Tensor misc_t_long(std::vector<int64_t> v) { return torch::tensor(v, torch::kLong); }
torch::Tensor misc_t_double(std::vector<double> v) { return torch::tensor(v, torch::kFloat64); }

class MisclassificationTest : public SeededTest {};

TEST_F(MisclassificationTest, ConfusionMatrixCountsTruePredPairs) {
  auto c = confusion_matrix(misc_t_long({0, 0, 1, 2, 2, 2}), misc_t_long({0, 1, 1, 2, 0, 2}), 3);
  auto want = torch::tensor({1, 1, 0, 0, 1, 0, 1, 0, 2}, torch::kLong).view({3, 3});
  EXPECT_TRUE(torch::equal(c, want)) << c;
  auto acc = per_class_accuracy(c);
  EXPECT_DOUBLE_EQ(acc[0].item<double>(), 0.5);
  EXPECT_DOUBLE_EQ(acc[1].item<double>(), 1.0);
  EXPECT_NEAR(acc[2].item<double>(), 2.0 / 3.0, 1e-15);
  // A class without samples has NaN accuracy, as documented.
  auto c4 = confusion_matrix(misc_t_long({0, 1}), misc_t_long({0, 1}), 4);
  EXPECT_TRUE(std::isnan(per_class_accuracy(c4)[3].item<double>()));
  GRADLENS_EXPECT_THROWS_WITH(confusion_matrix(misc_t_long({0, 3}), misc_t_long({0, 1}), 3), "outside [0, 3)");
}

TEST_F(MisclassificationTest, CosineNeighborsOrderBySimilarityAndSkipSelf) {
  // Angles 0, 10, 90 and 180 degrees, plus a zero row.
  const double r = M_PI / 180.0;
  auto x = torch::tensor({1.0, 0.0, std::cos(10 * r), std::sin(10 * r), 0.0, 2.0, -3.0, 0.0, 0.0, 0.0},
                         torch::kFloat64)
               .view({5, 2});
  auto nb = cosine_neighbors(x, 2);
  EXPECT_TRUE(torch::equal(nb.indices[0], misc_t_long({1, 2}))) << nb.indices;
  EXPECT_NEAR(nb.similarities[0][0].item<double>(), std::cos(10 * r), 1e-12);
  // Row 2 (90 deg): row 1 has cos sin(10 deg), then rows 0, 3 and 4 all have
  // cos 0; ties go to the lower index.
  EXPECT_TRUE(torch::equal(nb.indices[2], misc_t_long({1, 0}))) << nb.indices;
  EXPECT_NEAR(nb.similarities[2][0].item<double>(), std::sin(10 * r), 1e-12);
  // The zero row has cos 0 with everything and is not its own neighbour.
  EXPECT_TRUE(torch::equal(nb.indices[4], misc_t_long({0, 1}))) << nb.indices;
  // Queries and chunking give the same rows.
  auto q = cosine_neighbors(x, 2, misc_t_long({3, 0}), 1);
  EXPECT_TRUE(torch::equal(q.indices[1], nb.indices[0]));
  EXPECT_TRUE(torch::equal(q.indices[0], nb.indices[3]));
  GRADLENS_EXPECT_THROWS_WITH(cosine_neighbors(x, 5), "k must be in [1, 4]");
  auto bad = x.clone();
  bad[3][1] = std::nan("");
  GRADLENS_EXPECT_THROWS_WITH(cosine_neighbors(bad, 2), "row 3");
}

TEST_F(MisclassificationTest, LabelErrorScoresFollowTheirDefinitions) {
  auto p = misc_t_double({0.7, 0.2, 0.1,  //
                          0.1, 0.3, 0.6,  //
                          0.5, 0.5, 0.0})
               .view({3, 3});
  auto y = misc_t_long({0, 1, 1});
  auto s = label_error_scores(p, y);
  EXPECT_NEAR(s.self_confidence[0].item<double>(), 0.3, 1e-15);
  EXPECT_NEAR(s.self_confidence[1].item<double>(), 0.7, 1e-15);
  EXPECT_NEAR(s.normalized_margin[0].item<double>(), -(0.7 - 0.2), 1e-15);
  EXPECT_NEAR(s.normalized_margin[1].item<double>(), -(0.3 - 0.6), 1e-15);
  EXPECT_NEAR(s.normalized_margin[2].item<double>(), 0.0, 1e-15);
  EXPECT_FALSE(s.neighbor_disagreement.defined());
  EXPECT_EQ(s.names().size(), 2u);
  GRADLENS_EXPECT_THROWS_WITH(label_error_scores(p * 3.0, y), "summing to 1");
}

TEST_F(MisclassificationTest, NeighborDisagreementWeighsNeighboursBySimilarity) {
  // Two tight groups; sample 2 sits in group A but carries group B's label.
  auto e = misc_t_double({1.0, 0.0, 0.99, 0.1, 0.98, 0.05, 0.0, 1.0, 0.1, 0.99, 0.05, 0.98}).view({6, 2});
  auto y = misc_t_long({0, 0, 1, 1, 1, 1});
  auto p = torch::full({6, 2}, 0.5, torch::kFloat64);
  auto s = label_error_scores(p, y, e, 2);
  auto d = s.neighbor_disagreement;
  EXPECT_DOUBLE_EQ(d[2].item<double>(), 1.0);  // both neighbours (0, 1) say 0
  EXPECT_DOUBLE_EQ(d[3].item<double>(), 0.0);  // neighbours 4, 5 agree
  // Sample 0's neighbours are 1 (label 0) and 2 (label 1): the weight of the
  // disagreeing one over the sum of both similarities.
  auto cos = [](double a, double b, double c, double dd) {
    return (a * c + b * dd) / std::hypot(a, b) / std::hypot(c, dd);
  };
  const double w1 = cos(1, 0, 0.99, 0.1), w2 = cos(1, 0, 0.98, 0.05);
  EXPECT_NEAR(d[0].item<double>(), w2 / (w1 + w2), 1e-12);
  EXPECT_EQ(s.names().back(), "neighbor_disagreement");
}

TEST_F(MisclassificationTest, AurocIsTheMannWhitneyStatisticWithTies) {
  // sklearn.metrics.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75
  EXPECT_DOUBLE_EQ(auroc(misc_t_double({0.1, 0.4, 0.35, 0.8}), misc_t_long({0, 0, 1, 1})), 0.75);
  // All tied: 0.5. Perfect: 1. Reversed: 0.
  EXPECT_DOUBLE_EQ(auroc(misc_t_double({1, 1, 1, 1}), misc_t_long({1, 0, 1, 0})), 0.5);
  EXPECT_DOUBLE_EQ(auroc(misc_t_double({3, 2, 1}), misc_t_long({1, 0, 0})), 1.0);
  EXPECT_DOUBLE_EQ(auroc(misc_t_double({1, 2, 3}), misc_t_long({1, 0, 0})), 0.0);
  // One tie between a positive and a negative counts 1/2:
  // positives {2, 1}, negatives {1, 0}: pairs (2>1),(2>0),(1=1),(1>0) -> 3.5/4
  EXPECT_DOUBLE_EQ(auroc(misc_t_double({2, 1, 1, 0}), misc_t_long({1, 1, 0, 0})), 3.5 / 4.0);
  GRADLENS_EXPECT_THROWS_WITH(auroc(misc_t_double({1, 2}), misc_t_long({0, 0})), "both positives");
}

TEST_F(MisclassificationTest, PrecisionAtKCountsPositivesAmongTheTopScores) {
  auto sc = misc_t_double({0.9, 0.1, 0.8, 0.7, 0.2});
  auto err = misc_t_long({1, 0, 0, 1, 1});
  EXPECT_DOUBLE_EQ(precision_at_k(sc, err, 1), 1.0);
  EXPECT_DOUBLE_EQ(precision_at_k(sc, err, 2), 0.5);
  EXPECT_DOUBLE_EQ(precision_at_k(sc, err, 3), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(precision_at_k(sc, err, 5), 3.0 / 5.0);
  GRADLENS_EXPECT_THROWS_WITH(precision_at_k(sc, err, 6), "k must be in [1, 5]");
}

TEST_F(MisclassificationTest, FlipLabelsChangesExactlyTheRequestedShareToOtherClasses) {
  auto y = torch::arange(1000, torch::kLong).remainder(10);
  auto f = flip_labels(y, 10, 0.05, 7);
  EXPECT_EQ(f.flipped.sum().item<int64_t>(), 50);
  EXPECT_TRUE(torch::equal(f.labels.ne(y), f.flipped));
  EXPECT_TRUE((f.labels >= 0).all().item<bool>() && (f.labels < 10).all().item<bool>());
  auto g = flip_labels(y, 10, 0.05, 7);
  EXPECT_TRUE(torch::equal(f.labels, g.labels));  // seeded
  auto h = flip_labels(y, 10, 0.05, 8);
  EXPECT_FALSE(torch::equal(f.flipped, h.flipped));
  // The new labels spread over the other classes (not always y + 1).
  auto shift = (f.labels - y).remainder(10).masked_select(f.flipped);
  EXPECT_GT(std::get<0>(at::_unique(shift)).numel(), 3);
  GRADLENS_EXPECT_THROWS_WITH(flip_labels(y, 10, 1.5, 0), "fraction must be in [0, 1]");
}

}  // namespace
}  // namespace gradlens::analysis
