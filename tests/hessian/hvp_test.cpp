#include "gradlens/hessian/hvp.h"

#include <torch/torch.h>

#include "gradlens/hessian/spectrum.h"
#include "support/support.h"

namespace gradlens::hessian {
namespace {

using test::SeededTest;
class Hessian : public SeededTest {};

// A small float64 MLP: x[4] -> 5 (tanh) -> 3, cross-entropy on a batch.
struct Mlp {
  torch::Tensor w1 = torch::randn({5, 4}, torch::kFloat64).requires_grad_();
  torch::Tensor b1 = torch::randn({5}, torch::kFloat64).requires_grad_();
  torch::Tensor w2 = torch::randn({3, 5}, torch::kFloat64).requires_grad_();
  torch::Tensor x = torch::randn({6, 4}, torch::kFloat64);
  torch::Tensor y = torch::tensor({0, 1, 2, 0, 1, 2}, torch::kInt64);
  torch::Tensor loss() const {
    auto h = torch::tanh(torch::addmm(b1, x, w1.t()));
    return torch::nn::functional::cross_entropy(h.matmul(w2.t()), y);
  }
  TensorList params() const { return {w1, b1, w2}; }
};

TEST_F(Hessian, HvpMatchesCentralFiniteDifferencesOfTheGradient) {
  Mlp m;
  TensorList v = {torch::randn({5, 4}, torch::kFloat64), torch::randn({5}, torch::kFloat64),
                  torch::randn({3, 5}, torch::kFloat64)};
  auto hv = hvp(m.loss(), m.params(), v);
  const double eps = 1e-5;
  auto grad_at = [&](double s) {
    torch::NoGradGuard ng;
    Mlp shifted = m;
    shifted.w1 = (m.w1 + s * v[0]).detach().requires_grad_();
    shifted.b1 = (m.b1 + s * v[1]).detach().requires_grad_();
    shifted.w2 = (m.w2 + s * v[2]).detach().requires_grad_();
    torch::AutoGradMode on(true);
    return torch::autograd::grad({shifted.loss()}, shifted.params());
  };
  auto gp = grad_at(eps), gm = grad_at(-eps);
  for (size_t i = 0; i < 3; ++i) {
    auto fd = (gp[i] - gm[i]) / (2 * eps);
    EXPECT_LT(test::max_abs_diff(hv[i], fd), 1e-7) << i;
  }
}

TEST_F(Hessian, ExplicitHessianIsSymmetricAndAgreesWithProducts) {
  Mlp m;
  auto loss = m.loss();
  auto h = explicit_hessian(loss, m.params());
  ASSERT_EQ(h.size(0), 20 + 5 + 15);
  EXPECT_LT(test::max_abs_diff(h, h.t()), 1e-12);
  auto v = torch::randn({40}, torch::kFloat64);
  TensorList vl = {v.slice(0, 0, 20).view({5, 4}), v.slice(0, 20, 25), v.slice(0, 25, 40).view({3, 5})};
  auto hv = hvp(loss, m.params(), vl);
  auto flat = torch::cat({hv[0].flatten(), hv[1].flatten(), hv[2].flatten()});
  EXPECT_LT(test::max_abs_diff(flat, h.matmul(v)), 1e-12);
}

TEST_F(Hessian, InputHessianOfAReluNetEqualsTheGaussNewtonClosedForm) {
  // For a piecewise-linear network f and CE: ∇²_x CE = Jᵀ (diag p − p pᵀ) J.
  auto w1 = torch::randn({7, 4}, torch::kFloat64);
  auto w2 = torch::randn({3, 7}, torch::kFloat64);
  auto x = torch::randn({1, 4}, torch::kFloat64).requires_grad_();
  auto f = [&](const torch::Tensor& in) { return torch::relu(in.matmul(w1.t())).matmul(w2.t()); };
  auto logits = f(x);
  auto loss = torch::nn::functional::cross_entropy(logits, torch::tensor({1}, torch::kInt64));
  auto h = explicit_hessian(loss, {x});
  // J by rows: ∂logit_k/∂x.
  std::vector<torch::Tensor> rows;
  for (int k = 0; k < 3; ++k)
    rows.push_back(torch::autograd::grad({logits[0][k]}, {x}, {}, true)[0].flatten());
  auto j = torch::stack(rows);  // [3, 4]
  auto p = torch::softmax(logits.detach(), 1)[0];
  auto closed = j.t().matmul(torch::diag(p) - torch::outer(p, p)).matmul(j);
  EXPECT_LT(test::max_abs_diff(h, closed), 1e-10);
}

TEST_F(Hessian, PowerIterationAndHutchinsonRecoverAKnownSpectrum) {
  // L = ½ θᵀ A θ with A = Q diag(λ) Qᵀ: H = A.
  const int64_t d = 30;
  auto q = std::get<0>(torch::linalg_qr(torch::randn({d, d}, torch::kFloat64)));
  auto lam = torch::linspace(0.1, 3.0, d, torch::kFloat64);
  lam[d - 1] = 10.0;
  lam[d - 2] = 6.0;
  auto a = q.matmul(torch::diag(lam)).matmul(q.t());
  auto theta = torch::randn({d}, torch::kFloat64).requires_grad_();
  auto loss = 0.5 * theta.dot(a.matmul(theta));
  auto grads = grads_with_graph(loss, {theta});
  HvpFn fn = [&](const TensorList& v) { return hvp_from_grads(grads, {theta}, v); };
  EigenOptions eo;
  eo.k = 2;
  eo.max_iter = 500;
  eo.tol = 1e-8;
  auto eig = top_eigenvalues(fn, {theta}, eo);
  EXPECT_NEAR(eig.eigenvalues[0], 10.0, 0.1);
  EXPECT_NEAR(eig.eigenvalues[1], 6.0, 0.06);
  TraceOptions to;
  to.max_iter = 5000;
  to.tol = 1e-5;
  to.min_iter = 200;
  auto tr = hutchinson_trace(fn, {theta}, to);
  const double exact = lam.sum().item<double>();
  EXPECT_NEAR(tr.trace, exact, 0.01 * exact);
}

TEST_F(Hessian, ShapeMismatchAndNonScalarLossAreErrors) {
  Mlp m;
  GRADLENS_EXPECT_THROWS_WITH(hvp(m.loss(), m.params(), {torch::zeros({1})}), "vectors");
  auto v = torch::ones({2}, torch::kFloat64).requires_grad_();
  GRADLENS_EXPECT_THROWS_WITH(hvp(v * 2, {v}, {v}), "scalar loss");
}

}  // namespace
}  // namespace gradlens::hessian
