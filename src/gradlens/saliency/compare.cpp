#include "gradlens/saliency/compare.h"
#include <torch/torch.h>

#include <string>
#include <vector>

#include "gradlens/core/check.h"
#include "gradlens/core/choice.h"
#include "gradlens/saliency/distribution_metrics.h"

namespace gradlens::saliency {
namespace {

// Helper names carry a cmp_ prefix (unity translation units merge the
// anonymous namespaces of the area's files).

void cmp_check_maps(const torch::Tensor& t, const char* fn, const char* name) {
  GRADLENS_CHECK(t.defined() && t.dim() == 3 && !t.is_complex(), "saliency::", fn, ": ", name,
                 " must be a real [N, H, W] tensor, got ",
                 t.defined() ? t.sizes() : c10::IntArrayRef{});
  GRADLENS_CHECK(t.size(0) >= 1 && t.size(1) >= 1 && t.size(2) >= 1, "saliency::", fn, ": ", name,
                 " is empty (shape ", t.sizes(), "); give at least one image of at least 1x1");
}

void cmp_check_same(const torch::Tensor& a, const char* a_name, const torch::Tensor& b,
                    const char* b_name, const char* fn, const char* fix) {
  GRADLENS_CHECK(a.sizes() == b.sizes(), "saliency::", fn, ": ", a_name, " have shape ", a.sizes(),
                 " but ", b_name, " have shape ", b.sizes(), "; they must be equal (", fix, ")");
  GRADLENS_CHECK(a.device() == b.device(), "saliency::", fn, ": ", a_name, " are on ", a.device(),
                 " but ", b_name, " are on ", b.device(), "; move both to the same device");
}

torch::Tensor cmp_constant(const torch::Tensor& t) {
  const auto f = t.flatten(1);
  return f.amax(1) == f.amin(1);
}

MetricColumn cmp_column(const std::string& name, MetricResult r, const SummaryOptions& so) {
  MetricColumn c;
  c.name = name;
  c.result = std::move(r);
  const int64_t n = c.result.values.size(0);
  const bool any = n > 0 && (!so.exclude_degenerate || c.result.num_degenerate < n);
  if (any) {
    c.summary = summarize(c.result, so);
    c.summarized = true;
  } else {
    c.summary.num_images = n;
    c.summary.num_degenerate = c.result.num_degenerate;
  }
  return c;
}

/// Puts the values of the images `idx` (computed on a subset) back into a
/// full [N] result whose other images carry `chance` and are flagged.
MetricResult cmp_scatter(const MetricResult& part, const torch::Tensor& idx, int64_t n,
                         double chance, const torch::Device& device) {
  MetricResult r;
  auto values = torch::full({n}, chance, torch::TensorOptions().dtype(torch::kDouble));
  auto degenerate = torch::ones({n}, torch::TensorOptions().dtype(torch::kBool));
  if (idx.numel() > 0) {
    values.index_copy_(0, idx, part.values.to(torch::kCPU, torch::kDouble));
    degenerate.index_copy_(0, idx, part.degenerate.to(torch::kCPU, torch::kBool));
  }
  r.num_degenerate = degenerate.sum().item<int64_t>();
  r.values = values.to(device);
  r.degenerate = degenerate.to(device);
  return r;
}

}  // namespace

const std::vector<std::string>& comparison_metric_names() {
  static const std::vector<std::string> names = {"CC", "KLD", "SIM", "NSS", "AUC-Judd", "AUC-Borji"};
  return names;
}

constexpr core::Choice<ComparisonKind> kComparisonKinds[] = {
    {"class-mean", ComparisonKind::kClassMean}, {"models", ComparisonKind::kModels}, {"mask", ComparisonKind::kMask}};

std::string comparison_kind_name(ComparisonKind kind) { return core::choice_name(kComparisonKinds, kind); }

ComparisonKind parse_comparison_kind(const std::string& name, const std::string& flag) {
  return core::parse_choice(kComparisonKinds, name, flag, "comparison");
}

const MetricColumn& MapComparison::get(const std::string& name) const {
  std::string known;
  for (const auto& m : metrics) {
    if (m.name == name) return m;
    known += (known.empty() ? "" : ", ") + m.name;
  }
  GRADLENS_CHECK(false, "no metric '", name, "' in this comparison; it has ", known);
  return metrics.front();
}

torch::Tensor fixations_from_reference(const torch::Tensor& reference, double threshold) {
  cmp_check_maps(reference, "fixations_from_reference", "reference");
  GRADLENS_CHECK(threshold > 0 && threshold <= 1, "--fixation-threshold must lie in (0, 1], got ",
                 threshold);
  const auto r = reference.to(torch::kDouble);
  const int64_t n = r.size(0);
  const auto f = r.flatten(1);
  const auto lo = f.amin(1).view({n, 1, 1});
  const auto hi = f.amax(1).view({n, 1, 1});
  const auto range = torch::where(hi > lo, hi - lo, torch::ones_like(hi));
  auto fix = ((r - lo) / range >= threshold).logical_and(hi > lo);
  return fix.to(torch::kByte);
}

torch::Tensor class_mean_maps(const torch::Tensor& maps, const torch::Tensor& labels,
                              int64_t num_classes) {
  cmp_check_maps(maps, "class_mean_maps", "maps");
  GRADLENS_CHECK(num_classes >= 1, "class_mean_maps: num_classes must be >= 1, got ", num_classes);
  GRADLENS_CHECK(labels.defined() && labels.dim() == 1 && labels.size(0) == maps.size(0) &&
                     !labels.is_floating_point(),
                 "class_mean_maps: labels must be integer [", maps.size(0), "], got ",
                 labels.defined() ? labels.sizes() : c10::IntArrayRef{});
  const auto y = labels.to(maps.device(), torch::kLong);
  const auto lo = y.min().item<int64_t>(), hi = y.max().item<int64_t>();
  GRADLENS_CHECK(lo >= 0 && hi < num_classes, "class_mean_maps: labels lie in [", lo, ", ", hi,
                 "] but must lie in [0, ", num_classes, ")");
  const auto m = maps.to(torch::kDouble);
  auto sums = torch::zeros({num_classes, m.size(1), m.size(2)}, m.options());
  sums.index_add_(0, y, m);
  const auto counts = torch::bincount(y, {}, num_classes).to(torch::kDouble);
  return (sums / counts.clamp_min(1).view({num_classes, 1, 1})).to(torch::kFloat);
}

MapComparison compare_maps(const torch::Tensor& maps, const torch::Tensor& reference,
                           const torch::Tensor& fixations, const CompareOptions& options) {
  cmp_check_maps(maps, "compare_maps", "maps");
  cmp_check_maps(reference, "compare_maps", "references");
  cmp_check_maps(fixations, "compare_maps", "fixation maps");
  cmp_check_same(maps, "maps", reference, "references", "compare_maps",
                 "compute both at the same input size");
  cmp_check_same(maps, "maps", fixations, "fixation maps", "compare_maps",
                 "compute both at the same input size");
  MapComparison out;
  out.kind = "maps";
  const int64_t n = maps.size(0);
  const int64_t pixels = maps.size(1) * maps.size(2);
  const auto& so = options.summary;
  out.metrics.push_back(cmp_column("CC", cc(maps, reference), so));
  out.metrics.push_back(cmp_column("KLD", kld(maps, reference), so));
  out.metrics.push_back(cmp_column("SIM", sim(maps, reference), so));

  // Fixation metrics only on images with at least one fixated pixel and one
  // negative; the others get chance and are flagged.
  GRADLENS_CHECK(!torch::any(fixations < 0).item<bool>(),
                 "saliency::compare_maps: fixation maps hold negative values; use a 0/1 or 0/255 map");
  const auto count = (fixations > 0).flatten(1).sum(1).to(torch::kCPU);
  const auto bad = torch::logical_or(count == 0, count == pixels);
  const auto idx = bad.logical_not().nonzero().flatten();
  const auto dev = maps.device();
  MetricResult nss_r, judd_r;
  SampledAucResult borji_r;
  if (idx.numel() > 0) {
    const auto di = idx.to(dev);
    const auto m = maps.index_select(0, di);
    const auto f = fixations.index_select(0, di);
    nss_r = nss(m, f);
    judd_r = auc_judd(m, f);
    SampledAucOptions bo = options.auc_borji;
    bo.keep_negatives = false;
    borji_r = auc_borji(m, f, bo);
  }
  out.metrics.push_back(cmp_column("NSS", cmp_scatter(nss_r, idx, n, 0.0, dev), so));
  out.metrics.push_back(cmp_column("AUC-Judd", cmp_scatter(judd_r, idx, n, 0.5, dev), so));
  out.metrics.push_back(cmp_column("AUC-Borji", cmp_scatter(borji_r, idx, n, 0.5, dev), so));

  out.map_constant = cmp_constant(maps).to(dev);
  out.reference_constant = cmp_constant(reference).to(dev);
  out.fixations_degenerate = bad.to(dev);
  out.num_map_constant = out.map_constant.sum().item<int64_t>();
  out.num_reference_constant = out.reference_constant.sum().item<int64_t>();
  out.num_fixations_degenerate = bad.sum().item<int64_t>();
  return out;
}

MapComparison compare_to_class_mean(const torch::Tensor& maps, const torch::Tensor& labels,
                                    int64_t num_classes, const CompareOptions& options) {
  cmp_check_maps(maps, "compare_to_class_mean", "maps");
  const auto means = class_mean_maps(maps, labels, num_classes);  // checks labels
  const auto y = labels.to(maps.device(), torch::kLong);
  torch::Tensor ref = means.index_select(0, y);
  if (options.leave_one_out) {
    const auto counts = torch::bincount(y, {}, num_classes).to(torch::kDouble).index_select(0, y);
    const auto others = (counts - 1).view({-1, 1, 1});
    const auto m = maps.to(torch::kDouble);
    const auto sum_others = ref.to(torch::kDouble) * counts.view({-1, 1, 1}) - m;
    ref = torch::where(others > 0, sum_others / others.clamp_min(1), torch::zeros_like(m))
              .clamp_min(0)  // rounding must not make a non-negative mean negative (KLD)
              .to(torch::kFloat);
  }
  auto out = compare_maps(maps, ref, fixations_from_reference(ref, options.fixation_threshold),
                          options);
  out.kind = "class-mean";
  return out;
}

MapComparison compare_models(const torch::Tensor& maps_a, const torch::Tensor& maps_b,
                             const CompareOptions& options) {
  cmp_check_maps(maps_a, "compare_models", "maps of model A");
  cmp_check_maps(maps_b, "compare_models", "maps of model B");
  cmp_check_same(maps_a, "maps of model A", maps_b, "maps of model B", "compare_models",
                 "compute both models' maps on the same images at the same input size");
  auto out = compare_maps(maps_a, maps_b,
                          fixations_from_reference(maps_b, options.fixation_threshold), options);
  out.kind = "models";
  return out;
}

MapComparison compare_to_masks(const torch::Tensor& maps, const torch::Tensor& masks,
                               const CompareOptions& options) {
  cmp_check_maps(maps, "compare_to_masks", "maps");
  GRADLENS_CHECK(masks.defined() && (masks.dim() == 3 || (masks.dim() == 4 && masks.size(1) == 1)),
                 "saliency::compare_to_masks: masks must be [N, 1, H, W] or [N, H, W], got ",
                 masks.defined() ? masks.sizes() : c10::IntArrayRef{},
                 " (the data set has no masks? ImageFolder masks are <image>.mask.png files)");
  const auto m3 = masks.dim() == 4 ? masks.squeeze(1) : masks;
  cmp_check_same(maps, "maps", m3, "masks", "compare_to_masks",
                 "compute the maps at the masks' image size");
  const auto ref = masks.scalar_type() == torch::kByte ? m3.to(torch::kFloat) / 255.0
                                                       : m3.to(torch::kFloat);
  auto out = compare_maps(maps, ref, (m3 > 0).to(torch::kByte), options);
  out.kind = "mask";
  return out;
}

}  // namespace gradlens::saliency
