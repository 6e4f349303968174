#include "gradlens/influence/tracin.h"

#include <torch/torch.h>

#include <cmath>

#include "support/support.h"

namespace gradlens::influence {
namespace {

// One checkpoint of a linear head: weights, and the features and labels of
// the training images and the queries under it.
struct HeadCheckpoint {
  torch::Tensor w, b;           // [K, D], [K]
  torch::Tensor train_a, query_a;  // [N, D], [Q, D]
};

HeadCheckpoint random_checkpoint(int64_t k, int64_t d, int64_t n, int64_t q, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({k, d}, torch::kFloat64), torch::randn({k}, torch::kFloat64),
          torch::randn({n, d}, torch::kFloat64), torch::randn({q, d}, torch::kFloat64)};
}

// Per-sample gradients of CE(W a + b, y) w.r.t. (W, b) by autograd, flattened: [N, K*D + K].
torch::Tensor autograd_head_gradients(const HeadCheckpoint& c, const torch::Tensor& a, const torch::Tensor& y) {
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < a.size(0); ++i) {
    auto w = c.w.clone().requires_grad_(true);
    auto b = c.b.clone().requires_grad_(true);
    auto z = torch::mv(w, a[i]) + b;
    auto loss = torch::nn::functional::cross_entropy(z.unsqueeze(0), y.slice(0, i, i + 1));
    auto g = torch::autograd::grad({loss}, {w, b});
    rows.push_back(torch::cat({g[0].flatten(), g[1]}));
  }
  return torch::stack(rows);
}

GradientFactors factors(const HeadCheckpoint& c, const torch::Tensor& a, const torch::Tensor& y) {
  return head_gradients(a.to(torch::kFloat32), (torch::mm(a, c.w.t()) + c.b).to(torch::kFloat32), y);
}

TEST(TracIn, HeadInnerProductEqualsTheAutogradGradientsInnerProduct) {
  const auto c = random_checkpoint(4, 6, 9, 3, 1);
  const auto y = torch::tensor({0, 1, 2, 3, 0, 1, 2, 3, 0}, torch::kInt64);
  const auto yq = torch::tensor({3, 2, 1}, torch::kInt64);
  const auto g = autograd_head_gradients(c, c.train_a, y);
  const auto gq = autograd_head_gradients(c, c.query_a, yq);
  const auto inner = gradient_inner(factors(c, c.query_a, yq), factors(c, c.train_a, y));
  EXPECT_TRUE(torch::allclose(inner, torch::mm(gq, g.t()), 1e-5, 1e-5)) << inner - torch::mm(gq, g.t());
  EXPECT_TRUE(torch::allclose(gradient_norm(factors(c, c.train_a, y)), g.norm(2, {1}), 1e-5, 1e-6));
}

TEST(TracIn, EqualsAHandWrittenSumOverCheckpoints) {
  const int64_t k = 3, d = 5, n = 40, q = 4;
  const auto y = torch::arange(n, torch::kInt64) % k;
  const auto yq = torch::tensor({0, 1, 2, 1}, torch::kInt64);
  const std::vector<double> eta = {0.1, 0.05, 0.01};
  std::vector<GradientFactors> train, queries;
  auto expected = torch::zeros({q, n}, torch::kFloat64);
  auto expected_cos = torch::zeros({q, n}, torch::kFloat64);
  auto expected_self = torch::zeros({n}, torch::kFloat64);
  for (size_t t = 0; t < eta.size(); ++t) {
    const auto c = random_checkpoint(k, d, n, q, 10 + t);
    const auto g = autograd_head_gradients(c, c.train_a, y);
    const auto gq = autograd_head_gradients(c, c.query_a, yq);
    expected += eta[t] * torch::mm(gq, g.t());
    expected_cos += eta[t] * torch::mm(gq / gq.norm(2, {1}, true), (g / g.norm(2, {1}, true)).t());
    expected_self += eta[t] * g.pow(2).sum(1);
    train.push_back(factors(c, c.train_a, y));
    queries.push_back(factors(c, c.query_a, yq));
  }
  TracInOptions o;
  o.top_k = 5;
  o.chunk_rows = 7;  // several blocks, the last one short
  o.keep_scores = true;
  const auto r = tracin(train, queries, eta, o);
  ASSERT_TRUE(torch::allclose(r.scores, expected, 1e-4, 1e-5)) << (r.scores - expected).abs().max();
  const auto sorted = expected.sort(1, true);
  EXPECT_TRUE(torch::equal(r.proponents, std::get<1>(sorted).slice(1, 0, 5)));
  EXPECT_TRUE(torch::allclose(r.proponent_scores, std::get<0>(sorted).slice(1, 0, 5), 1e-4, 1e-5));
  const auto low = expected.sort(1, false);
  EXPECT_TRUE(torch::equal(r.opponents, std::get<1>(low).slice(1, 0, 5)));
  EXPECT_TRUE(torch::allclose(r.opponent_scores, std::get<0>(low).slice(1, 0, 5), 1e-4, 1e-5));

  o.cosine = true;
  const auto rc = tracin(train, queries, eta, o);
  EXPECT_TRUE(torch::allclose(rc.scores, expected_cos, 1e-4, 1e-5)) << (rc.scores - expected_cos).abs().max();
  EXPECT_TRUE(torch::allclose(self_influence(train, eta), expected_self, 1e-4, 1e-5));
}

TEST(TracIn, TiesAreListedLowerIndexFirstAcrossBlocks) {
  // Identical training images: equal scores everywhere.
  const auto a = torch::ones({6, 2});
  const auto z = torch::zeros({6, 2});
  const auto y = torch::zeros({6}, torch::kInt64);
  const auto train = head_gradients(a, z, y);
  const auto query = head_gradients(torch::ones({1, 2}), torch::zeros({1, 2}), torch::zeros({1}, torch::kInt64));
  TracInOptions o;
  o.top_k = 4;
  o.chunk_rows = 2;
  const auto r = tracin({train}, {query}, {1.0}, o);
  EXPECT_TRUE(torch::equal(r.proponents, torch::tensor({{0, 1, 2, 3}}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(r.opponents, torch::tensor({{0, 1, 2, 3}}, torch::kInt64)));
}

TEST(TracIn, CheckpointsOfDifferentModelsAndBadStepSizesAreClearErrors) {
  const auto y = torch::zeros({3}, torch::kInt64);
  const auto a = head_gradients(torch::randn({3, 4}), torch::randn({3, 2}), y);
  const auto b = head_gradients(torch::randn({3, 5}), torch::randn({3, 2}), y);
  try {
    self_influence({a, b}, {1.0, 1.0});
    FAIL() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("not of one model"), std::string::npos);
  }
  EXPECT_THROW(self_influence({a}, {-1.0}), c10::Error);
  EXPECT_THROW(self_influence({a}, {NAN}), c10::Error);
  EXPECT_THROW(self_influence({a}, {1.0, 2.0}), c10::Error);
  TracInOptions o;
  o.top_k = 0;
  EXPECT_THROW(tracin({a}, {a}, {1.0}, o), c10::Error);
  EXPECT_THROW(head_gradients(torch::randn({3, 4}), torch::randn({3, 2}), torch::tensor({0, 2, 1}, torch::kInt64)),
               c10::Error);
}

}  // namespace
}  // namespace gradlens::influence
