#include "gradlens/hessian/loss_spectrum.h"

#include <torch/nn/functional/loss.h>

#include "gradlens/core/check.h"
#include "gradlens/core/choice.h"

namespace gradlens::hessian {

namespace {

// Sets every parameter's requires_grad and restores the old flags on exit.
class RequiresGradGuard {
 public:
  RequiresGradGuard(std::vector<torch::Tensor> params, bool requires) : params_(std::move(params)) {
    for (auto& p : params_) {
      old_.push_back(p.requires_grad());
      p.requires_grad_(requires);
    }
  }
  ~RequiresGradGuard() {
    for (size_t i = 0; i < params_.size(); ++i) params_[i].requires_grad_(old_[i]);
  }
  RequiresGradGuard(const RequiresGradGuard&) = delete;
  RequiresGradGuard& operator=(const RequiresGradGuard&) = delete;

 private:
  std::vector<torch::Tensor> params_;
  std::vector<bool> old_;
};

}  // namespace

constexpr core::Choice<HessianWrt> kHessianWrt[] = {{"params", HessianWrt::kParams}, {"input", HessianWrt::kInput}};

std::string hessian_wrt_name(HessianWrt wrt) { return core::choice_name(kHessianWrt, wrt); }

HessianWrt parse_hessian_wrt(const std::string& name, const std::string& flag) {
  return core::parse_choice(kHessianWrt, name, flag, "");
}

LossSpectrum loss_spectrum(models::Classifier& model, int64_t n, const BatchFn& batch,
                           const LossSpectrumOptions& opts) {
  GRADLENS_CHECK(opts.batch_size >= 1, "--batch-size must be >= 1, got ", opts.batch_size);
  GRADLENS_CHECK(n >= 1, "the Hessian needs at least one image, got ", n);
  const bool input = opts.wrt == HessianWrt::kInput;
  TensorList vars;
  for (auto& [name, p] : model.named_parameters()) {
    bool keep = opts.param_prefixes.empty();
    for (const auto& pre : opts.param_prefixes) keep = keep || name.rfind(pre, 0) == 0;
    if (keep) vars.push_back(p);
  }
  GRADLENS_CHECK(input || !vars.empty(), "--params: no parameter name starts with the given prefixes; see the "
                                         "names with 'gradlens models' (e.g. fc, layer4)");
  models::ModeGuard eval(model, false);
  // Only the chosen variables get graphs.
  RequiresGradGuard frozen(model.parameters(), false);
  if (!input)
    for (auto& v : vars) v.requires_grad_(true);

  LossSpectrum r;
  r.samples = opts.one_batch || input ? std::min(n, opts.batch_size) : n;
  TensorList like;
  HvpFn fn;
  if (input) {
    auto [x, y] = batch(0, r.samples);
    x = x.detach().requires_grad_(true);
    like = {x};
    const auto loss = torch::nn::functional::cross_entropy(model.forward(x), y);
    const auto grads = grads_with_graph(loss, like);
    fn = [grads, like](const TensorList& v) { return hvp_from_grads(grads, like, v); };
  } else {
    like = vars;
    fn = [&model, &batch, like, n = r.samples, bs = opts.batch_size](const TensorList& v) {
      TensorList acc;
      for (int64_t s = 0; s < n; s += bs) {
        const int64_t e = std::min(n, s + bs);
        const auto [x, y] = batch(s, e);
        const auto loss = torch::nn::functional::cross_entropy(model.forward(x), y);
        const auto hv = hvp(loss, like, v);
        const double w = static_cast<double>(e - s) / static_cast<double>(n);
        if (acc.empty()) {
          for (const auto& t : hv) acc.push_back(t * w);
        } else {
          for (size_t i = 0; i < hv.size(); ++i) acc[i] += hv[i] * w;
        }
      }
      return acc;
    };
  }
  for (const auto& t : like) r.dimension += t.numel();
  r.eigen = top_eigenvalues(fn, like, opts.eigen);
  if (opts.compute_trace) r.trace = hutchinson_trace(fn, like, opts.trace);
  return r;
}

}  // namespace gradlens::hessian
