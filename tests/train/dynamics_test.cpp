#include "gradlens/train/dynamics.h"

#include <torch/torch.h>

#include <cmath>

#include "support/support.h"

namespace gradlens::train {
namespace {

TEST(TrainingDynamics, BatchValuesMatchTheirDefinitionsOnAHandCase) {
  // Row 0: logits (2, 0, 1), label 0 -> margin 2 - 1 = 1, correct.
  // Row 1: logits (0, 3, 0), label 2 -> margin 0 - 3 = -3, wrong.
  const auto z = torch::tensor({{2.0f, 0.0f, 1.0f}, {0.0f, 3.0f, 0.0f}});
  const auto y = torch::tensor({0, 2}, torch::kInt64);
  const auto d = batch_dynamics(z, y);
  const double e2 = std::exp(2.0), e1 = std::exp(1.0), e3 = std::exp(3.0);
  const double p00 = e2 / (e2 + 1 + e1), p01 = 1 / (e2 + 1 + e1), p02 = e1 / (e2 + 1 + e1);
  const double p1 = 1 / (e3 + 2), p11 = e3 / (e3 + 2);
  EXPECT_FLOAT_EQ(d.margin[0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(d.margin[1].item<float>(), -3.0f);
  EXPECT_NEAR(d.p_label[0].item<float>(), p00, 1e-6);
  EXPECT_NEAR(d.p_label[1].item<float>(), p1, 1e-6);
  EXPECT_EQ(d.correct[0].item<int>(), 1);
  EXPECT_EQ(d.correct[1].item<int>(), 0);
  EXPECT_NEAR(d.el2n[0].item<float>(), std::sqrt((p00 - 1) * (p00 - 1) + p01 * p01 + p02 * p02), 1e-6);
  EXPECT_NEAR(d.el2n[1].item<float>(), std::sqrt(p1 * p1 + p11 * p11 + (p1 - 1) * (p1 - 1)), 1e-6);
}

TEST(TrainingDynamics, RecorderPlacesRowsAndTakesTheEpochsRun) {
  DynamicsRecorder rec(3, 4);
  const auto z = torch::tensor({{1.0f, 0.0f}, {0.0f, 2.0f}});
  rec.record(0, torch::tensor({3, 1}, torch::kInt64), z, torch::tensor({0, 0}, torch::kInt64));
  rec.record(0, torch::tensor({0, 2}, torch::kInt64), z, torch::tensor({1, 1}, torch::kInt64));
  rec.record(1, torch::tensor({0, 1, 2, 3}, torch::kInt64), torch::cat({z, z}), torch::tensor({0, 0, 0, 0}, torch::kInt64));
  const auto d = rec.take(2);
  ASSERT_EQ(d.epochs(), 2);
  ASSERT_EQ(d.size(), 4);
  // Epoch 1: image 3 <- row (1, 0) label 0: margin 1; image 1 <- (0, 2) label 0: margin -2;
  // image 0 <- (1, 0) label 1: margin -1; image 2 <- (0, 2) label 1: margin 2.
  EXPECT_TRUE(torch::equal(d.margin[0], torch::tensor({-1.0f, -2.0f, 2.0f, 1.0f})));
  EXPECT_TRUE(torch::equal(d.correct[0], torch::tensor({0, 0, 1, 1}, torch::kUInt8)));
  EXPECT_TRUE(torch::equal(d.margin[1], torch::tensor({1.0f, -2.0f, 1.0f, -2.0f})));
  // Epoch 3 was never recorded.
  EXPECT_THROW(rec.take(3), c10::Error);
}

TEST(TrainingDynamics, BadInputIsAClearError) {
  DynamicsRecorder rec(1, 2);
  const auto z = torch::tensor({{1.0f, 0.0f}});
  EXPECT_THROW(rec.record(1, torch::tensor({0}, torch::kInt64), z, torch::tensor({0}, torch::kInt64)), c10::Error);
  EXPECT_THROW(rec.record(0, torch::tensor({2}, torch::kInt64), z, torch::tensor({0}, torch::kInt64)), c10::Error);
  EXPECT_THROW(rec.record(0, torch::tensor({0}, torch::kInt64), z, torch::tensor({2}, torch::kInt64)), c10::Error);
  EXPECT_THROW(rec.record(0, torch::tensor({0}, torch::kInt64), torch::tensor({{NAN, 0.0f}}),
                          torch::tensor({0}, torch::kInt64)),
               c10::Error);
  EXPECT_THROW(DynamicsRecorder(0, 3), c10::Error);
}

}  // namespace
}  // namespace gradlens::train
