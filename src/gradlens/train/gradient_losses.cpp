#include "gradlens/train/gradient_losses.h"
#include <torch/torch.h>

#include "gradlens/core/check.h"
#include "gradlens/train/mutual_info.h"

namespace gradlens::train {

namespace {

struct State {
  GradientLossOptions opts;
  torch::Tensor projection;  // [P, k], lazily on the right device/dtype
  std::unique_ptr<MineEstimator> mine;
  uint64_t step = 0;
};

torch::Tensor gradcam_weights_true(models::Classifier& model, const torch::Tensor& x,
                                   const torch::Tensor& y, const std::string& layer) {
  auto maps = model.body(x, layer);
  auto logits = model.head(maps, layer);
  auto target = logits.gather(1, y.unsqueeze(1)).sum();
  auto g = torch::autograd::grad({target}, {maps}, {}, true, true)[0];
  return g.mean({2, 3});
}

}  // namespace

GradientLosses make_gradient_losses(const GradientLossOptions& o) {
  GRADLENS_CHECK(o.lambda_grad >= 0, "--lambda-grad must be >= 0, got ", o.lambda_grad);
  GRADLENS_CHECK(o.lambda_mi >= 0, "--lambda-mi must be >= 0, got ", o.lambda_mi);
  GRADLENS_CHECK_OPTION(o.lambda_curv >= 0, "--lambda-curv must be >= 0, got ", o.lambda_curv);
  GRADLENS_CHECK_OPTION(o.source == "input" || o.source == "gradcam", "--grad-source: unknown source '",
                 o.source, "'; use input or gradcam");
  GRADLENS_CHECK_OPTION(o.mi_estimator == "gaussian" || o.mi_estimator == "mine",
                 "--mi-estimator: unknown estimator '", o.mi_estimator, "'; use gaussian or mine");
  GRADLENS_CHECK(o.mi_dims >= 1, "--mi-dims must be >= 1, got ", o.mi_dims);
  GradientLosses out;
  if (o.lambda_grad == 0 && o.lambda_mi == 0 && o.lambda_curv == 0) return out;
  auto st = std::make_shared<State>();
  st->opts = o;
  if (o.lambda_mi > 0 && o.mi_estimator == "mine") {
    st->mine = std::make_unique<MineEstimator>(o.mi_dims, o.mi_dims);
    out.parameters = st->mine->parameters();
  }
  out.state = st;
  out.fn = [st](models::Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                           const torch::Tensor& logits) {
    const auto& o = st->opts;
    std::vector<std::pair<std::string, torch::Tensor>> terms;
    torch::Tensor g_input;
    auto need_input = o.lambda_curv > 0 || ((o.lambda_grad > 0 || o.lambda_mi > 0) && o.source == "input");
    if (need_input) g_input = input_gradients(logits, y, x);
    torch::Tensor g = o.source == "input" ? g_input
                                          : ((o.lambda_grad > 0 || o.lambda_mi > 0)
                                                 ? gradcam_weights_true(model, x, y, o.layer)
                                                 : torch::Tensor());
    if (o.lambda_grad > 0) {
      auto r = grad_alignment_loss(g, y, o.form, o.reduction);
      terms.emplace_back("L_grad", o.lambda_grad * r.loss);
    }
    if (o.lambda_mi > 0) {
      if (!st->projection.defined() || st->projection.size(0) != g.size(1))
        st->projection = random_projection(g.size(1), o.mi_dims, o.seed, g);
      auto z = g.matmul(st->projection);
      auto [a, b] = same_class_pairs(z, y);
      torch::Tensor mi;
      if (a.size(0) >= 2 * o.mi_dims + 2) {
        if (st->mine) {
          st->mine->to(z.device(), z.scalar_type());
          auto gen = at::detail::createCPUGenerator(o.seed + 7919 * (++st->step));
          auto perm = torch::randperm(a.size(0), gen, torch::TensorOptions().dtype(torch::kInt64))
                          .to(z.device());
          mi = -st->mine->step(a, b, perm).loss;
        } else {
          mi = gaussian_mi(a, b, o.mi_shrinkage);
        }
      } else {
        mi = (z * 0).sum();  // too few same-class pairs in this batch
      }
      terms.emplace_back("L_MI", -o.lambda_mi * mi);
    }
    if (o.lambda_curv > 0) {
      auto gen = at::detail::createCPUGenerator(o.seed + 104729 * (++st->step));
      auto v = torch::randn(g_input.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
      v = torch::where(v >= 0, torch::ones_like(v), -torch::ones_like(v)).to(g_input.options());
      auto hv = torch::autograd::grad({(g_input * v).sum()}, {x}, {}, true, true)[0].flatten(1);
      auto trace = (hv * v).sum() / static_cast<double>(x.size(0));
      terms.emplace_back("L_curv", o.lambda_curv * trace);
    }
    return terms;
  };
  return out;
}

}  // namespace gradlens::train
