#include "gradlens/saliency/faithfulness.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "gradlens/core/check.h"
#include "gradlens/core/strings.h"

namespace gradlens::saliency {

namespace detail {

void check_faithfulness_inputs(const torch::Tensor& images, const torch::Tensor& maps, const torch::Tensor& targets) {
  GRADLENS_CHECK(images.dim() == 4 && images.size(0) > 0, "images must be a non-empty [N, C, H, W] tensor, got ",
                 images.sizes());
  GRADLENS_CHECK(maps.dim() == 3 && maps.size(0) == images.size(0) && maps.size(1) == images.size(2) &&
                     maps.size(2) == images.size(3),
                 "maps ", maps.sizes(), " must be [N, H, W] for images ", images.sizes());
  GRADLENS_CHECK(targets.dim() == 1 && targets.size(0) == images.size(0), "targets ", targets.sizes(),
                 " must be [N] for images ", images.sizes());
  GRADLENS_CHECK(torch::isfinite(maps).all().item<bool>(), "attribution maps hold NaN or infinite values");
}

torch::Tensor target_probs(const LogitsFn& model, const torch::Tensor& inputs, const torch::Tensor& targets,
                           int64_t batch_size) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t b = 0; b < inputs.size(0); b += batch_size) {
    const auto logits = model(inputs.slice(0, b, std::min(b + batch_size, inputs.size(0))));
    parts.push_back(torch::softmax(logits.to(torch::kCPU, torch::kDouble), 1));
  }
  const auto probs = torch::cat(parts);
  const int64_t k = probs.size(1);
  GRADLENS_CHECK(targets.min().item<int64_t>() >= 0 && targets.max().item<int64_t>() < k,
                 "targets must lie in [0, ", k, ") for a model with ", k, " classes");
  return probs.gather(1, targets.to(torch::kCPU).unsqueeze(1)).squeeze(1);
}

}  // namespace detail

namespace {

using detail::target_probs;

/// 1-D Gaussian kernel of `sigma` with radius min(ceil(3 sigma), max_radius),
/// normalised.
torch::Tensor gaussian_kernel(double sigma, int64_t max_radius, const torch::TensorOptions& o) {
  const int64_t r = std::max<int64_t>(1, std::min<int64_t>(static_cast<int64_t>(std::ceil(3 * sigma)), max_radius));
  auto x = torch::arange(-r, r + 1, o.dtype(torch::kDouble));
  auto g = torch::exp(-(x * x) / (2 * sigma * sigma));
  return (g / g.sum()).to(o);
}

CurveResult perturbation_curve(const LogitsFn& model, const torch::Tensor& images, const torch::Tensor& maps,
                               const torch::Tensor& targets, const PerturbationOptions& opts, bool insertion) {
  detail::check_faithfulness_inputs(images, maps, targets);
  GRADLENS_CHECK_OPTION(opts.steps >= 1 && opts.steps <= 10000, "--steps must be from 1 to 10000, got ", opts.steps);
  GRADLENS_CHECK_OPTION(opts.batch_size >= 1, "--batch-size must be >= 1, got ", opts.batch_size);
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3), p = h * w;
  const int64_t s1 = opts.steps + 1, ps = opts.patch_size;
  GRADLENS_CHECK_OPTION(ps >= 1 && h % ps == 0 && w % ps == 0, "--patch-size ", ps, " must divide the image size ", h,
                        " x ", w, " (1 perturbs single pixels)");
  const int64_t hp = h / ps, wp = w / ps, u = hp * wp;  // units: patches of ps x ps pixels
  const auto base = baseline_images(images, opts);
  // rank[i, q] = position of pixel q's unit in the descending order of the
  // map summed over each unit.
  const auto unit_maps =
      maps.to(torch::kCPU, torch::kDouble).reshape({n, hp, ps, wp, ps}).sum({2, 4}).reshape({n, u});
  const auto order = std::get<1>(torch::sort(-unit_maps, /*stable=*/true, 1, false));
  auto unit_rank = torch::empty_like(order);
  unit_rank.scatter_(1, order, torch::arange(u, torch::kLong).expand({n, u}).contiguous());
  const auto rank =
      unit_rank.view({n, hp, 1, wp, 1}).expand({n, hp, ps, wp, ps}).reshape({n, p}).to(images.device());
  std::vector<int64_t> counts(static_cast<size_t>(s1));
  for (int64_t s = 0; s < s1; ++s) counts[s] = static_cast<int64_t>(std::llround(static_cast<double>(s) * u / opts.steps));
  const auto counts_t = torch::tensor(counts, torch::kLong).to(images.device());

  CurveResult r;
  r.fractions = torch::tensor(counts, torch::kDouble) / static_cast<double>(u);
  r.probs = torch::empty({n, s1}, torch::kDouble);
  // Chunks of images whose perturbed copies fill about one batch.
  const int64_t chunk = std::max<int64_t>(1, opts.batch_size / s1);
  for (int64_t i0 = 0; i0 < n; i0 += chunk) {
    const int64_t i1 = std::min(n, i0 + chunk), m = i1 - i0;
    // perturbed[j, s] = pixel q taken from `from` where rank < counts[s], else from `keep`.
    const auto changed = (rank.slice(0, i0, i1).view({m, 1, 1, h, w}) < counts_t.view({1, s1, 1, 1, 1}));
    const auto img = images.slice(0, i0, i1).unsqueeze(1);
    const auto bas = base.slice(0, i0, i1).unsqueeze(1);
    const auto perturbed = insertion ? torch::where(changed, img, bas) : torch::where(changed, bas, img);
    const auto tgt = targets.slice(0, i0, i1).to(torch::kCPU).repeat_interleave(s1);
    r.probs.slice(0, i0, i1) = target_probs(model, perturbed.reshape({m * s1, c, h, w}), tgt, opts.batch_size)
                                   .view({m, s1});
  }
  const auto dx = r.fractions.slice(0, 1) - r.fractions.slice(0, 0, s1 - 1);
  r.auc = ((r.probs.slice(1, 1) + r.probs.slice(1, 0, s1 - 1)) * 0.5 * dx).sum(1);
  return r;
}

}  // namespace

const std::vector<std::string>& baseline_names() {
  static const std::vector<std::string> names = {"zero", "mean", "blur"};
  return names;
}

Baseline parse_baseline(const std::string& name, const std::string& flag) {
  if (name == "zero") return Baseline::kZero;
  if (name == "mean") return Baseline::kMean;
  if (name == "blur") return Baseline::kBlur;
  GRADLENS_CHECK_OPTION(false, flag, ": unknown baseline '", name, "'; use one of ", core::join(baseline_names(), ", "));
  return Baseline::kZero;
}

std::string baseline_name(Baseline b) { return baseline_names()[static_cast<size_t>(b)]; }

torch::Tensor baseline_images(const torch::Tensor& images, const PerturbationOptions& opts) {
  switch (opts.baseline) {
    case Baseline::kZero:
      return torch::zeros_like(images);
    case Baseline::kMean:
      return images.mean({2, 3}, /*keepdim=*/true).expand_as(images).contiguous();
    case Baseline::kBlur: {
      GRADLENS_CHECK_OPTION(opts.blur_sigma > 0 && std::isfinite(opts.blur_sigma),
                            "the blur baseline's sigma must be a finite number > 0, got ", opts.blur_sigma);
      const int64_t c = images.size(1);
      GRADLENS_CHECK(images.size(2) >= 2 && images.size(3) >= 2, "the blur baseline needs images of at least 2x2 px");
      const auto g = gaussian_kernel(opts.blur_sigma, std::min(images.size(2), images.size(3)) - 1, images.options());
      const int64_t r = (g.size(0) - 1) / 2;
      namespace F = torch::nn::functional;
      // Separable blur with reflected borders, each channel on its own.
      auto x = F::pad(images, F::PadFuncOptions({r, r, 0, 0}).mode(torch::kReflect));
      x = F::conv2d(x, g.view({1, 1, 1, -1}).repeat({c, 1, 1, 1}), F::Conv2dFuncOptions().groups(c));
      x = F::pad(x, F::PadFuncOptions({0, 0, r, r}).mode(torch::kReflect));
      return F::conv2d(x, g.view({1, 1, -1, 1}).repeat({c, 1, 1, 1}), F::Conv2dFuncOptions().groups(c));
    }
  }
  return images;
}

CurveResult deletion_curve(const LogitsFn& model, const torch::Tensor& images, const torch::Tensor& maps,
                           const torch::Tensor& targets, const PerturbationOptions& opts) {
  return perturbation_curve(model, images, maps, targets, opts, /*insertion=*/false);
}

CurveResult insertion_curve(const LogitsFn& model, const torch::Tensor& images, const torch::Tensor& maps,
                            const torch::Tensor& targets, const PerturbationOptions& opts) {
  return perturbation_curve(model, images, maps, targets, opts, /*insertion=*/true);
}

ConfidenceChange confidence_change(const LogitsFn& model, const torch::Tensor& images, const torch::Tensor& maps,
                                   const torch::Tensor& targets, int64_t batch_size) {
  detail::check_faithfulness_inputs(images, maps, targets);
  GRADLENS_CHECK_OPTION(batch_size >= 1, "--batch-size must be >= 1, got ", batch_size);
  ConfidenceChange r;
  r.original = target_probs(model, images, targets, batch_size);
  r.explanation = target_probs(model, images * maps.to(images.options()).unsqueeze(1), targets, batch_size);
  r.drop = (r.original - r.explanation).clamp_min(0) / r.original;
  r.increase = (r.explanation > r.original).to(torch::kDouble);
  return r;
}

}  // namespace gradlens::saliency
