#include "gradlens/hessian/hvp.h"
#include <torch/types.h>
#include <torch/autograd.h>

#include "gradlens/core/check.h"

namespace gradlens::hessian {

TensorList grads_with_graph(const torch::Tensor& loss, const TensorList& vars) {
  GRADLENS_CHECK(loss.numel() == 1, "the Hessian needs a scalar loss, got shape ", loss.sizes());
  for (const auto& v : vars) GRADLENS_CHECK(v.requires_grad(), "every variable must require grad");
  return torch::autograd::grad({loss}, vars, {}, /*retain_graph=*/true, /*create_graph=*/true,
                               /*allow_unused=*/true);
}

TensorList hvp_from_grads(const TensorList& grads, const TensorList& vars, const TensorList& v) {
  GRADLENS_CHECK(v.size() == vars.size(), "hvp: ", v.size(), " vectors for ", vars.size(),
                 " variables");
  torch::Tensor inner;
  for (size_t i = 0; i < vars.size(); ++i) {
    GRADLENS_CHECK(v[i].sizes() == vars[i].sizes(), "hvp: vector ", i, " has shape ", v[i].sizes(),
                   ", variable has ", vars[i].sizes());
    if (!grads[i].defined()) continue;
    auto term = (grads[i] * v[i].to(grads[i].scalar_type())).sum();
    inner = inner.defined() ? inner + term : term;
  }
  TensorList out(vars.size());
  if (!inner.defined() || !inner.requires_grad()) {
    for (size_t i = 0; i < vars.size(); ++i) out[i] = torch::zeros_like(vars[i]);
    return out;
  }
  auto hv = torch::autograd::grad({inner}, vars, {}, /*retain_graph=*/true, /*create_graph=*/false,
                                  /*allow_unused=*/true);
  for (size_t i = 0; i < vars.size(); ++i)
    out[i] = hv[i].defined() ? hv[i].detach() : torch::zeros_like(vars[i]);
  return out;
}

TensorList hvp(const torch::Tensor& loss, const TensorList& vars, const TensorList& v) {
  return hvp_from_grads(grads_with_graph(loss, vars), vars, v);
}

double dot(const TensorList& a, const TensorList& b) {
  TORCH_INTERNAL_ASSERT(a.size() == b.size());
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += (a[i].to(torch::kFloat64) * b[i].to(torch::kFloat64)).sum().item<double>();
  return s;
}

torch::Tensor explicit_hessian(const torch::Tensor& loss, const TensorList& vars) {
  auto grads = grads_with_graph(loss, vars);
  int64_t p = 0;
  for (const auto& v : vars) p += v.numel();
  auto opts = vars.front().options().requires_grad(false);
  auto h = torch::zeros({p, p}, opts);
  for (int64_t col = 0; col < p; ++col) {
    TensorList e;
    int64_t off = 0;
    for (const auto& v : vars) {
      auto t = torch::zeros({v.numel()}, opts);
      if (col >= off && col < off + v.numel()) t[col - off] = 1;
      e.push_back(t.view(v.sizes()));
      off += v.numel();
    }
    auto hv = hvp_from_grads(grads, vars, e);
    std::vector<torch::Tensor> flat;
    for (auto& t : hv) flat.push_back(t.flatten());
    h.select(1, col).copy_(torch::cat(flat));
  }
  return h;
}

}  // namespace gradlens::hessian
