#include "gradlens/train/grad_loss.h"

#include <torch/torch.h>

#include "gradlens/models/resnet.h"
#include "support/support.h"

namespace gradlens::train {
namespace {

class GradLoss : public test::SeededTest {};

double pair_loop(const torch::Tensor& g, const torch::Tensor& y, GradForm form) {
  double s = 0;
  for (int64_t i = 0; i < g.size(0); ++i)
    for (int64_t j = i + 1; j < g.size(0); ++j) {
      if (y[i].item<int64_t>() != y[j].item<int64_t>()) continue;
      if (form == GradForm::kEuclidean)
        s += (g[i] - g[j]).pow(2).sum().item<double>();
      else
        s += 1.0 - torch::cosine_similarity(g[i], g[j], 0).item<double>();
    }
  return s;
}

TEST_F(GradLoss, EqualsTheDirectPairLoopInBothForms) {
  auto g = torch::randn({11, 7}, torch::kFloat64);
  auto y = torch::tensor({0, 1, 0, 2, 1, 0, 3, 1, 1, 2, 0}, torch::kInt64);
  // pairs: class0 4 -> 6, class1 4 -> 6, class2 2 -> 1, class3 1 -> 0: 13.
  for (auto form : {GradForm::kEuclidean, GradForm::kCosine}) {
    auto sum = grad_alignment_loss(g, y, form, GradReduction::kSum);
    EXPECT_EQ(sum.pairs, 13);
    EXPECT_NEAR(sum.loss.item<double>(), pair_loop(g, y, form), 1e-10);
    auto mean = grad_alignment_loss(g, y, form, GradReduction::kMean);
    EXPECT_NEAR(mean.loss.item<double>(), pair_loop(g, y, form) / 13, 1e-12);
  }
}

TEST_F(GradLoss, IdenticalGradientsCostNothingAndNoPairsGiveZero) {
  auto row = torch::randn({1, 5}, torch::kFloat64);
  auto g = row.repeat({4, 1});
  auto y = torch::zeros({4}, torch::kInt64);
  EXPECT_NEAR(grad_alignment_loss(g, y, GradForm::kCosine, GradReduction::kSum).loss.item<double>(),
              0.0, 1e-12);
  auto distinct = torch::arange(4, torch::kInt64);
  auto r = grad_alignment_loss(g, distinct, GradForm::kEuclidean, GradReduction::kMean);
  EXPECT_EQ(r.pairs, 0);
  EXPECT_EQ(r.loss.item<double>(), 0.0);
}

TEST_F(GradLoss, ZeroGradientRowsHaveCosineZero) {
  auto g = torch::zeros({2, 3}, torch::kFloat64);
  g[0][0] = 1;
  auto y = torch::zeros({2}, torch::kInt64);
  EXPECT_NEAR(grad_alignment_loss(g, y, GradForm::kCosine, GradReduction::kSum).loss.item<double>(),
              1.0, 1e-12);
}

// ∂L_grad/∂θ through double backprop against central finite differences, on
// a small float64 network (tanh, so second derivatives are smooth).
TEST_F(GradLoss, ParameterGradientMatchesFiniteDifferences) {
  auto w1 = torch::randn({6, 5}, torch::kFloat64).requires_grad_();
  auto w2 = torch::randn({3, 6}, torch::kFloat64).requires_grad_();
  auto x0 = torch::randn({8, 5}, torch::kFloat64);
  auto y = torch::tensor({0, 1, 2, 0, 1, 2, 0, 1}, torch::kInt64);
  for (auto form : {GradForm::kEuclidean, GradForm::kCosine}) {
    auto lgrad = [&](const torch::Tensor& a, const torch::Tensor& b) {
      auto x = x0.clone().requires_grad_();
      auto logits = torch::tanh(x.matmul(a.t())).matmul(b.t());
      auto g = input_gradients(logits, y, x);
      return grad_alignment_loss(g, y, form, GradReduction::kMean).loss;
    };
    auto analytic = torch::autograd::grad({lgrad(w1, w2)}, {w1})[0];
    const double eps = 1e-6;
    auto fd = torch::zeros_like(w1);
    for (int64_t i = 0; i < w1.numel(); ++i) {
      torch::NoGradGuard ng;
      auto wp = w1.detach().clone(), wm = w1.detach().clone();
      wp.view(-1)[i] += eps;
      wm.view(-1)[i] -= eps;
      torch::AutoGradMode on(true);
      fd.view(-1)[i] = (lgrad(wp, w2).item<double>() - lgrad(wm, w2).item<double>()) / (2 * eps);
    }
    const double rel = ((analytic - fd).norm() / fd.norm()).item<double>();
    EXPECT_LT(rel, 1e-3) << (form == GradForm::kCosine ? "cosine" : "euclidean");
  }
}

TEST_F(GradLoss, BadFlagsAreNamed) {
  GRADLENS_EXPECT_THROWS_WITH(parse_grad_form("l1"), "--grad-form");
  GRADLENS_EXPECT_THROWS_WITH(parse_grad_reduction("max"), "--grad-reduction");
}

}  // namespace
}  // namespace gradlens::train
