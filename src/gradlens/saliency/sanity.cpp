#include "gradlens/saliency/sanity.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>

#include "gradlens/core/check.h"
#include "gradlens/models/classifier.h"

namespace gradlens::saliency {

namespace {

void check_pair(const torch::Tensor& a, const torch::Tensor& b) {
  GRADLENS_CHECK(a.dim() == 3 && a.numel() > 0 && a.sizes() == b.sizes(), "maps must be two non-empty [N, H, W] "
                 "tensors of the same shape, got ", a.sizes(), " and ", b.sizes());
  GRADLENS_CHECK(torch::isfinite(a).all().item<bool>() && torch::isfinite(b).all().item<bool>(),
                 "maps hold NaN or infinite values");
}

/// Ranks 1..P of each row of x [N, P], ties given their average rank.
torch::Tensor average_ranks(const torch::Tensor& x) {
  const int64_t n = x.size(0), p = x.size(1);
  const auto [sorted, order] = torch::sort(x, /*stable=*/true, 1, false);
  auto ranks = torch::empty({n, p}, torch::kDouble);
  auto s = sorted.accessor<double, 2>();
  auto o = order.accessor<int64_t, 2>();
  auto r = ranks.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < p;) {
      int64_t k = j;
      while (k + 1 < p && s[i][k + 1] == s[i][j]) ++k;
      const double avg = 0.5 * static_cast<double>(j + k) + 1.0;
      for (int64_t q = j; q <= k; ++q) r[i][o[i][q]] = avg;
      j = k + 1;
    }
  return ranks;
}

/// "layer4.1.conv1.weight" -> "layer4.1"; "fc.weight" -> "fc".
// An element of a sequence of blocks: "1" (nn.Sequential, nn.ModuleList) or
// "encoder_layer_1" (torchvision's ViT).
bool is_sequence_element(const std::string& c) {
  if (c.empty()) return false;
  if (std::all_of(c.begin(), c.end(), [](unsigned char ch) { return std::isdigit(ch); })) return true;
  const auto u = c.rfind('_');
  return u != std::string::npos && u + 1 < c.size() && u > 0 &&
         std::all_of(c.begin() + static_cast<std::ptrdiff_t>(u) + 1, c.end(),
                     [](unsigned char ch) { return std::isdigit(ch); });
}

std::string group_of(const std::string& name) {
  std::vector<std::string> parts;
  for (size_t b = 0;;) {
    const auto e = name.find('.', b);
    parts.push_back(name.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  if (parts.size() == 1) return name;
  size_t end = parts.size() - 1;  // the module path: all but the parameter's own name
  for (size_t i = 1; i + 1 < parts.size(); ++i)
    if (is_sequence_element(parts[i])) {
      end = i + 1;
      break;
    }
  std::string g = parts[0];
  for (size_t i = 1; i < end; ++i) g += "." + parts[i];
  return g;
}

}  // namespace

torch::Tensor spearman_rank_correlation(const torch::Tensor& a, const torch::Tensor& b) {
  check_pair(a, b);
  const int64_t n = a.size(0);
  const auto ra = average_ranks(a.to(torch::kCPU, torch::kDouble).reshape({n, -1}));
  const auto rb = average_ranks(b.to(torch::kCPU, torch::kDouble).reshape({n, -1}));
  const auto ca = ra - ra.mean(1, true), cb = rb - rb.mean(1, true);
  const auto den = torch::sqrt((ca * ca).sum(1) * (cb * cb).sum(1));
  return torch::where(den > 0, (ca * cb).sum(1) / den,
                      torch::full({n}, std::numeric_limits<double>::quiet_NaN(), torch::kDouble));
}

torch::Tensor ssim(const torch::Tensor& a, const torch::Tensor& b, double data_range) {
  check_pair(a, b);
  GRADLENS_CHECK(a.size(1) >= 7 && a.size(2) >= 7, "SSIM needs maps of at least 7 x 7 px, got ", a.sizes());
  GRADLENS_CHECK(data_range > 0 && std::isfinite(data_range), "SSIM data_range must be > 0, got ", data_range);
  namespace F = torch::nn::functional;
  const auto x = a.to(torch::kCPU, torch::kDouble).unsqueeze(1), y = b.to(torch::kCPU, torch::kDouble).unsqueeze(1);
  // Window means over the pixels whose 7 x 7 window lies inside the map:
  // scikit-image's mean over the map cropped by 3 px, where its padding never
  // enters a window.
  const auto mean = [](const torch::Tensor& t) { return F::avg_pool2d(t, F::AvgPool2dFuncOptions(7).stride(1)); };
  const double cov_norm = 49.0 / 48.0;
  const auto ux = mean(x), uy = mean(y);
  const auto vx = cov_norm * (mean(x * x) - ux * ux), vy = cov_norm * (mean(y * y) - uy * uy);
  const auto vxy = cov_norm * (mean(x * y) - ux * uy);
  const double c1 = (0.01 * data_range) * (0.01 * data_range), c2 = (0.03 * data_range) * (0.03 * data_range);
  const auto s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
  return s.flatten(1).mean(1);
}

std::vector<std::string> parameter_groups(models::Classifier& model) {
  std::vector<std::string> groups;
  for (const auto& [name, p] : model.named_parameters()) {
    const auto g = group_of(name);
    if (std::find(groups.begin(), groups.end(), g) == groups.end()) groups.push_back(g);
  }
  std::reverse(groups.begin(), groups.end());
  return groups;
}

torch::Tensor attribution_maps(models::Classifier& model, const torch::Tensor& images, const torch::Tensor& labels,
                               const AttributionOptions& attribution, int64_t batch_size) {
  GRADLENS_CHECK_OPTION(batch_size >= 1, "--batch-size must be >= 1, got ", batch_size);
  std::vector<torch::Tensor> maps;
  for (int64_t s = 0; s < images.size(0); s += batch_size) {
    const int64_t e = std::min(images.size(0), s + batch_size);
    maps.push_back(compute_attribution(model, images.slice(0, s, e), labels.slice(0, s, e), attribution, s)
                       .maps.to(torch::kCPU));
  }
  return torch::cat(maps);
}

std::vector<RandomisationStep> model_randomisation_test(models::Classifier& model, const torch::Tensor& images,
                                                        const torch::Tensor& labels,
                                                        const AttributionOptions& attribution,
                                                        const RandomisationOptions& opts) {
  GRADLENS_CHECK_OPTION(opts.max_groups >= 0, "max_groups must be >= 0, got ", opts.max_groups);
  for (const int64_t r : opts.keep_rows)
    GRADLENS_CHECK(r >= 0 && r < images.size(0), "randomisation test: kept row ", r, " is not one of the ",
                   images.size(0), " images");
  const auto keep = torch::tensor(opts.keep_rows, torch::kLong);
  const auto reference = attribution_maps(model, images, labels, attribution, opts.batch_size);
  auto groups = parameter_groups(model);
  if (opts.max_groups > 0 && static_cast<int64_t>(groups.size()) > opts.max_groups) groups.resize(opts.max_groups);
  std::vector<std::pair<std::string, torch::Tensor>> params = model.named_parameters();
  std::vector<torch::Tensor> saved;
  for (const auto& [name, p] : params) saved.push_back(p.detach().clone());
  const auto restore = [&] {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) params[i].second.copy_(saved[i]);
  };
  auto gen = at::make_generator<at::CPUGeneratorImpl>(opts.seed);
  std::vector<RandomisationStep> steps;
  try {
    for (const auto& g : groups) {
      if (!opts.cascading) restore();
      {
        torch::NoGradGuard no_grad;
        for (size_t i = 0; i < params.size(); ++i) {
          if (group_of(params[i].first) != g) continue;
          auto& p = params[i].second;
          const double sd = p.numel() > 1 ? saved[i].to(torch::kDouble).std().item<double>() : 0.0;
          const auto draw = at::normal(0.0, sd > 0 ? sd : 0.01, p.sizes(), gen, torch::TensorOptions(torch::kDouble));
          p.copy_(draw);
        }
      }
      const auto maps = attribution_maps(model, images, labels, attribution, opts.batch_size);
      steps.push_back({g, spearman_rank_correlation(reference, maps), ssim(reference, maps),
                       opts.keep_rows.empty() ? torch::Tensor() : maps.index_select(0, keep).to(torch::kFloat)});
    }
  } catch (...) {
    restore();
    throw;
  }
  restore();
  return steps;
}

RandomLogitResult random_logit_test(models::Classifier& model, const torch::Tensor& images, const torch::Tensor& classes,
                                    const AttributionOptions& attribution, const RandomLogitOptions& opts) {
  const int64_t k = model.num_classes();
  GRADLENS_CHECK(k >= 2, "the random-logit test needs a model with at least 2 classes, got ", k);
  GRADLENS_CHECK(classes.dim() == 1 && classes.scalar_type() == torch::kInt64 && classes.size(0) == images.size(0),
                 "random_logit_test: classes must be int64 [", images.size(0), "], got ", classes.sizes());
  const auto cpu = classes.to(torch::kCPU);
  GRADLENS_CHECK(cpu.numel() == 0 || (cpu.min().item<int64_t>() >= 0 && cpu.max().item<int64_t>() < k),
                 "random_logit_test: classes must be in [0, ", k, ")");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(opts.seed);
  const auto shift = at::randint(1, k, {cpu.size(0)}, gen, torch::TensorOptions(torch::kInt64));
  RandomLogitResult r;
  r.classes = cpu;
  r.other_classes = (cpu + shift) % k;
  AttributionOptions given = attribution;
  given.target = extract::GradientTarget::kTrue;
  const auto a = attribution_maps(model, images, classes, given, opts.batch_size);
  const auto b = attribution_maps(model, images, r.other_classes.to(classes.device()), given, opts.batch_size);
  r.spearman = spearman_rank_correlation(a, b);
  r.ssim = ssim(a, b);
  return r;
}

}  // namespace gradlens::saliency
