#include "gradlens/saliency/cam.h"
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gradlens/core/check.h"
#include "gradlens/core/choice.h"
#include "gradlens/extract/logit_seed.h"
#include "gradlens/models/classifier.h"

namespace gradlens::saliency {
namespace {

// Helper names carry a cam_ prefix: the area is compiled as unity
// translation units, where anonymous namespaces of several files merge.

std::string cam_join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

uint64_t cam_splitmix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// Throws naming the first image (first_index + row) whose values are not all
/// finite. `t`: [B, ...].
void cam_check_finite(const torch::Tensor& t, int64_t first_index, const std::string& what) {
  if (t.numel() == 0) return;
  const auto bad = torch::logical_not(torch::isfinite(t)).flatten(1).any(1);
  if (!bad.any().item<bool>()) return;
  const int64_t row = bad.nonzero()[0][0].item<int64_t>();
  GRADLENS_CHECK(false, what, " of image ", first_index + row, " (row ", row,
                 " of the batch) holds NaN or Inf");
}

/// The per-sample seed dt_i/dz_i [B, K] for logits z (detached).
torch::Tensor cam_seed(const torch::Tensor& z, extract::GradientTarget target, const torch::Tensor& classes) {
  if (target == extract::GradientTarget::kLoss) return extract::logit_seed(extract::SeedKind::kCrossEntropy, classes, z.size(1), torch::softmax(z, 1));
  return extract::logit_seed(extract::SeedKind::kLogit, classes, z.size(1), z);
}

/// t_i as float64 [B].
torch::Tensor cam_target_values(const torch::Tensor& z, extract::GradientTarget target,
                                const torch::Tensor& classes) {
  const auto zd = z.detach().to(torch::kDouble);
  const auto picked = zd.gather(1, classes.unsqueeze(1)).squeeze(1);
  if (target == extract::GradientTarget::kLoss) return torch::logsumexp(zd, 1) - picked;
  return picked;
}

/// Validated labels (int64 [B] on `device`) or an undefined tensor.
torch::Tensor cam_labels(const torch::Tensor& labels, int64_t batch, int64_t k,
                         extract::GradientTarget target, int64_t first_index, torch::Device device) {
  const bool needed = target != extract::GradientTarget::kPred;
  if (!labels.defined()) {
    GRADLENS_CHECK(!needed, "--target ", extract::gradient_target_name(target),
                   " needs the true labels of the images, but none were given");
    return {};
  }
  GRADLENS_CHECK(labels.dim() == 1 && labels.size(0) == batch, "got ", labels.numel(),
                 " labels (shape ", labels.sizes(), ") for ", batch,
                 " images; pass exactly one int64 label per image");
  GRADLENS_CHECK(!labels.is_floating_point() && labels.scalar_type() != torch::kBool,
                 "labels must be integers, got ", c10::toString(labels.scalar_type()));
  const auto y = labels.to(device, torch::kLong);
  if (batch > 0) {
    const auto bad = torch::logical_or(y < 0, y >= k);
    if (bad.any().item<bool>()) {
      const int64_t row = bad.nonzero()[0][0].item<int64_t>();
      GRADLENS_CHECK(false, "the label of image ", first_index + row, " is ", y[row].item<int64_t>(),
                     ", outside [0, ", k, ") for a model with ", k,
                     " classes; target classes must lie in [0, ", k,
                     ") (the data has more classes than the model?)");
    }
  }
  return y;
}

/// d(sum_i t_i)/dx at `x` for the fixed classes; one forward + one backward.
torch::Tensor cam_input_grad(models::Classifier& model, const torch::Tensor& x,
                             extract::GradientTarget target, const torch::Tensor& classes) {
  const auto xg = x.detach().requires_grad_(true);
  const auto z = model.forward(xg);
  const auto seed = cam_seed(z.detach(), target, classes);
  return torch::autograd::grad({z}, {xg}, {seed})[0];
}

torch::Tensor cam_logits_no_grad(models::Classifier& model, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return model.forward(x).detach();
}

}  // namespace

const std::vector<std::string>& attribution_method_names() {
  static const std::vector<std::string> names = {"gradcam", "gradcam++", "gradient", "smoothgrad",
                                                 "ig"};
  return names;
}

AttributionMethod parse_attribution_method(const std::string& name) {
  const auto& names = attribution_method_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<AttributionMethod>(i);
  GRADLENS_CHECK_OPTION(false, "--method: unknown attribution method '", name, "'; use one of ",
                 cam_join(names));
  return AttributionMethod::kGradCam;
}

std::string attribution_method_name(AttributionMethod m) {
  return attribution_method_names().at(static_cast<size_t>(m));
}

bool is_cam_method(AttributionMethod m) {
  return m == AttributionMethod::kGradCam || m == AttributionMethod::kGradCamPlusPlus;
}

constexpr core::Choice<IgRule> kIgRules[] = {{"trapezoid", IgRule::kTrapezoid}, {"riemann", IgRule::kRiemann}};

std::string ig_rule_name(IgRule rule) { return core::choice_name(kIgRules, rule); }

IgRule parse_ig_rule(const std::string& name, const std::string& flag) {
  return core::parse_choice(kIgRules, name, flag, "rule");
}

torch::Tensor grad_cam_weights(const torch::Tensor& grads) {
  GRADLENS_CHECK(grads.defined() && grads.dim() == 4, "grad_cam_weights: gradients must be [B, C, h, w], got ",
                 grads.defined() ? grads.sizes() : c10::IntArrayRef{});
  return grads.mean({2, 3});
}

torch::Tensor grad_cam_plus_plus_weights(const torch::Tensor& grads, const torch::Tensor& activations) {
  GRADLENS_CHECK(grads.defined() && activations.defined() && grads.dim() == 4 &&
                     grads.sizes() == activations.sizes(),
                 "grad_cam_plus_plus_weights: gradients and activations must both be [B, C, h, w] "
                 "of the same shape, got ",
                 grads.defined() ? grads.sizes() : c10::IntArrayRef{}, " and ",
                 activations.defined() ? activations.sizes() : c10::IntArrayRef{});
  const auto g2 = grads * grads;
  const auto g3 = g2 * grads;
  const auto sum_a = activations.sum({2, 3}, /*keepdim=*/true);
  auto aij = g2 / (2 * g2 + sum_a * g3 + 1e-6);
  aij = torch::where(grads != 0, aij, torch::zeros_like(aij));
  return (torch::relu(grads) * aij).sum({2, 3});
}

torch::Tensor class_activation_map(const torch::Tensor& weights, const torch::Tensor& activations) {
  GRADLENS_CHECK(weights.defined() && activations.defined() && weights.dim() == 2 &&
                     activations.dim() == 4 && weights.size(0) == activations.size(0) &&
                     weights.size(1) == activations.size(1),
                 "class_activation_map: weights must be [B, C] and activations [B, C, h, w], got ",
                 weights.defined() ? weights.sizes() : c10::IntArrayRef{}, " and ",
                 activations.defined() ? activations.sizes() : c10::IntArrayRef{});
  return torch::relu((weights.unsqueeze(2).unsqueeze(3) * activations).sum(1));
}

NormalizedMaps upsample_and_normalize(const torch::Tensor& raw, int64_t height, int64_t width) {
  GRADLENS_CHECK(raw.defined() && raw.dim() == 3 && raw.is_floating_point() && raw.size(1) >= 1 &&
                     raw.size(2) >= 1,
                 "upsample_and_normalize: raw maps must be floating [B, h, w] with h, w >= 1, got ",
                 raw.defined() ? raw.sizes() : c10::IntArrayRef{});
  GRADLENS_CHECK(height >= 1 && width >= 1, "upsample_and_normalize: output size must be >= 1, got ",
                 height, "x", width);
  cam_check_finite(raw, 0, "raw map");
  NormalizedMaps out;
  const auto r = raw.to(torch::kFloat);
  const int64_t b = r.size(0);
  if (b == 0) {
    out.maps = torch::zeros({0, height, width}, r.options());
    out.constant = torch::zeros({0}, r.options().dtype(torch::kBool));
    return out;
  }
  const auto flat = r.flatten(1);
  auto constant = flat.amax(1) == flat.amin(1);
  torch::Tensor up = r;
  if (r.size(1) != height || r.size(2) != width) {
    namespace F = torch::nn::functional;
    up = F::interpolate(r.unsqueeze(1), F::InterpolateFuncOptions()
                                            .size(std::vector<int64_t>{height, width})
                                            .mode(torch::kBilinear)
                                            .align_corners(false))
             .squeeze(1);
  }
  const auto uf = up.flatten(1);
  const auto lo = uf.amin(1);
  const auto hi = uf.amax(1);
  constant = torch::logical_or(constant, hi <= lo);
  const auto range = torch::where(constant, torch::ones_like(hi), hi - lo);
  auto maps = (up - lo.view({b, 1, 1})) / range.view({b, 1, 1});
  maps = torch::where(constant.view({b, 1, 1}), torch::zeros_like(maps), maps).clamp(0.0, 1.0);
  out.maps = maps.contiguous();
  out.constant = constant;
  out.num_constant = constant.sum().item<int64_t>();
  return out;
}

NormalizedMaps cam_maps_from(const torch::Tensor& weights, const torch::Tensor& activations, int64_t height,
                             int64_t width) {
  return upsample_and_normalize(class_activation_map(weights, activations).to(torch::kFloat), height, width);
}

Attribution compute_attribution(models::Classifier& model, const torch::Tensor& x_in,
                                const torch::Tensor& labels, const AttributionOptions& opts,
                                int64_t first_index) {
  if (!opts.layer.empty()) model.check_layer(opts.layer, "--layer");
  GRADLENS_CHECK(x_in.defined() && x_in.dim() == 4 && x_in.is_floating_point(),
                 "input batch must be float [B, C, H, W], got ",
                 x_in.defined() ? x_in.sizes() : c10::IntArrayRef{}, " ",
                 x_in.defined() ? c10::toString(x_in.scalar_type()) : "undefined");
  GRADLENS_CHECK(x_in.size(1) == model.in_channels(), "input batch has ", x_in.size(1),
                 " channel(s) but ", model.describe(), " takes ", model.in_channels());
  const auto method = opts.method;
  if (method == AttributionMethod::kSmoothGrad) {
    GRADLENS_CHECK(opts.smoothgrad_samples >= 1, "--smoothgrad-samples must be >= 1, got ",
                   opts.smoothgrad_samples);
    GRADLENS_CHECK(std::isfinite(opts.smoothgrad_sigma) && opts.smoothgrad_sigma >= 0,
                   "--smoothgrad-sigma must be a finite fraction >= 0 of the input range, got ",
                   opts.smoothgrad_sigma);
  }
  if (method == AttributionMethod::kIntegratedGradients) {
    GRADLENS_CHECK_OPTION(opts.ig_steps >= 1, "--ig-steps must be >= 1, got ", opts.ig_steps);
  }
  cam_check_finite(x_in, first_index, "input");

  const int64_t b = x_in.size(0);
  const int64_t k = model.num_classes();
  const int64_t height = x_in.size(2), width = x_in.size(3);
  const auto y = cam_labels(labels, b, k, opts.target, first_index, x_in.device());

  models::ModeGuard eval(model, /*training=*/false);
  torch::AutoGradMode grad_mode(true);

  Attribution res;
  res.method = attribution_method_name(method);
  res.target = extract::gradient_target_name(opts.target);
  torch::Tensor z;        // clean logits (detached)
  torch::Tensor classes;  // int64 [B]
  auto resolve_classes = [&](const torch::Tensor& logits) {
    z = logits.detach();
    res.preds = z.argmax(1);
    classes = opts.target == extract::GradientTarget::kPred ? res.preds : y;
  };

  if (is_cam_method(method)) {
    res.layer = opts.layer.empty() ? model.default_layer() : opts.layer;
    const auto cap = model.capture(x_in, res.layer, /*maps_leaf=*/true);
    const auto& maps = cap.maps;
    const auto& logits = cap.logits;
    resolve_classes(logits);
    const auto grads =
        torch::autograd::grad({logits}, {maps}, {cam_seed(z, opts.target, classes)})[0];
    res.forward_passes = 1;
    res.backward_passes = 1;
    const auto a = maps.detach();
    cam_check_finite(grads, first_index, "the gradient at " + res.layer);
    res.weights = method == AttributionMethod::kGradCam ? grad_cam_weights(grads)
                                                        : grad_cam_plus_plus_weights(grads, a);
    res.raw = class_activation_map(res.weights, a);
  } else if (method == AttributionMethod::kGradient) {
    const auto xg = x_in.detach().requires_grad_(true);
    const auto logits = model.forward(xg);
    resolve_classes(logits);
    const auto g = torch::autograd::grad({logits}, {xg}, {cam_seed(z, opts.target, classes)})[0];
    res.forward_passes = 1;
    res.backward_passes = 1;
    res.raw = g.abs().amax(1);
  } else if (method == AttributionMethod::kSmoothGrad) {
    resolve_classes(cam_logits_no_grad(model, x_in));
    const int64_t n = opts.smoothgrad_samples;
    const auto per_image = x_in.detach().flatten(1);
    const auto sigma = b > 0 ? ((per_image.amax(1) - per_image.amin(1)) * opts.smoothgrad_sigma)
                                   .view({b, 1, 1, 1})
                             : torch::zeros({0, 1, 1, 1}, x_in.options());
    std::vector<at::Generator> gens;
    for (int64_t i = 0; i < b; ++i)
      gens.push_back(at::detail::createCPUGenerator(
          cam_splitmix(opts.seed ^ cam_splitmix(static_cast<uint64_t>(first_index + i)))));
    const auto cpu_float = torch::TensorOptions().dtype(x_in.scalar_type()).device(torch::kCPU);
    auto acc = torch::zeros({b, height, width}, x_in.options());
    for (int64_t s = 0; s < n; ++s) {
      std::vector<torch::Tensor> noise;
      noise.reserve(b);
      for (int64_t i = 0; i < b; ++i)
        noise.push_back(torch::randn({x_in.size(1), height, width}, gens[i], cpu_float));
      const auto eps = b > 0 ? torch::stack(noise).to(x_in.device()) * sigma : torch::zeros_like(x_in);
      acc += cam_input_grad(model, x_in + eps, opts.target, classes).abs().amax(1);
    }
    res.raw = acc / static_cast<double>(n);
    res.forward_passes = 1 + n;
    res.backward_passes = n;
  } else {  // Integrated Gradients
    resolve_classes(cam_logits_no_grad(model, x_in));
    torch::Tensor base = torch::zeros_like(x_in);
    if (opts.ig_baseline.defined()) {
      const auto& bl = opts.ig_baseline;
      const bool shared = bl.dim() == 3 && bl.sizes() == x_in.sizes().slice(1);
      GRADLENS_CHECK(bl.is_floating_point() && (shared || bl.sizes() == x_in.sizes()),
                     "IG baseline must be float [C, H, W] = ", x_in.sizes().slice(1),
                     " or [B, C, H, W] = ", x_in.sizes(), ", got ", bl.sizes(), " ",
                     c10::toString(bl.scalar_type()));
      GRADLENS_CHECK(torch::isfinite(bl).all().item<bool>(), "IG baseline holds NaN or Inf");
      base = (shared ? bl.unsqueeze(0).expand_as(x_in) : bl).to(x_in.device(), x_in.scalar_type());
    }
    const auto diff = x_in.detach() - base;
    const int64_t m = opts.ig_steps;
    const bool trapezoid = opts.ig_rule == IgRule::kTrapezoid;
    auto grad_sum = torch::zeros_like(x_in);
    for (int64_t j = trapezoid ? 0 : 1; j <= m; ++j) {
      const double a = static_cast<double>(j) / static_cast<double>(m);
      double w = 1.0 / static_cast<double>(m);
      if (trapezoid && (j == 0 || j == m)) w *= 0.5;
      grad_sum += w * cam_input_grad(model, base + a * diff, opts.target, classes);
      ++res.forward_passes;
      ++res.backward_passes;
    }
    res.attributions = diff * grad_sum;
    cam_check_finite(res.attributions, first_index, "IG attribution");
    res.raw = res.attributions.sum(1).abs();
    const auto zb = cam_logits_no_grad(model, base);
    res.forward_passes += 2;
    res.baseline_values = cam_target_values(zb, opts.target, classes);
    res.completeness_gap = res.attributions.to(torch::kDouble).sum({1, 2, 3}) -
                           (cam_target_values(z, opts.target, classes) - res.baseline_values);
  }
  cam_check_finite(res.raw, first_index, res.method + " map");

  res.logits = z.to(torch::kFloat);
  res.target_classes = classes;
  res.target_values = cam_target_values(z, opts.target, classes);
  res.raw = res.raw.detach().to(torch::kFloat);
  auto norm = upsample_and_normalize(res.raw, height, width);
  res.maps = norm.maps;
  res.constant = norm.constant;
  res.num_constant = norm.num_constant;
  if (res.weights.defined()) res.weights = res.weights.detach().to(torch::kFloat);
  if (res.attributions.defined()) res.attributions = res.attributions.detach().to(torch::kFloat);
  return res;
}

}  // namespace gradlens::saliency
