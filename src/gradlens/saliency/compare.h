// Per-image comparisons of attribution maps with the saliency metrics
// (metrics.h): a map against the mean map of its true class, the maps of two
// models on the same images, and a map against a ground-truth object mask.
//
// Each comparison scores a map m_i (the "prediction") against a reference r_i
// (the "target"), image by image, with six metrics:
//   CC, KLD, SIM           two continuous maps: m_i and r_i as they are;
//                          KLD is KL(r_i || m_i);
//   NSS, AUC-Judd, AUC-Borji  m_i and a binary fixation map f_i derived from r_i:
//                          a mask: f_i = mask_i > 0;
//                          a continuous reference (class mean, other model):
//                          f_i = normalise(r_i) >= fixation_threshold, with
//                          normalise the per-image min-max scaling to [0, 1].
//
// Nothing is silently NaN. An image is *degenerate* for a metric when its map
// or its reference is constant (e.g. an all-zero Grad-CAM), or, for the
// fixation metrics, when f_i is empty or covers every pixel (no negatives).
// It then gets the metric's documented chance value (CC 0, NSS 0, AUCs 0.5;
// KLD and SIM per distribution_metrics.h) and is flagged; the counts are in
// the result and in every summary.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gradlens/saliency/fixation_metrics.h"
#include "gradlens/saliency/metric_result.h"

namespace gradlens::saliency {

/// "CC", "KLD", "SIM", "NSS", "AUC-Judd", "AUC-Borji": the output order.
const std::vector<std::string>& comparison_metric_names();

/// What each map is compared with: the mean map of its true class, the
/// first model's map of the same image, or the image's object mask.
enum class ComparisonKind { kClassMean, kModels, kMask };

/// "class-mean", "models" or "mask".
std::string comparison_kind_name(ComparisonKind kind);
/// comparison_kind_name()'s inverse. Throws gradlens::Error (usage) naming `flag`.
ComparisonKind parse_comparison_kind(const std::string& name, const std::string& flag = "--compare");

struct CompareOptions {
  /// Fixations of a continuous reference: pixels whose min-max normalised
  /// value is >= this threshold, in (0, 1]. A non-constant reference then
  /// always has at least one fixated pixel (its maximum) and one negative (its
  /// minimum).
  double fixation_threshold = 0.5;
  /// AUC-Borji's random splits, step and seed (fixation_metrics.h).
  SampledAucOptions auc_borji;
  /// class-mean: leave image i out of its own class mean (the mean of the
  /// other images of the class; an image alone in its class is then compared
  /// with an all-zero map, i.e. flagged degenerate). Default: include it.
  bool leave_one_out = false;
  /// Summaries: leave degenerate images out of mean/std (still counted).
  SummaryOptions summary;
};

/// One metric over the images of a comparison.
struct MetricColumn {
  std::string name;
  MetricResult result;    ///< values [N] float64, degenerate [N] bool
  MetricSummary summary;  ///< mean ± std over the images; counts
  /// False when no image was left to summarise (every image degenerate with
  /// exclude_degenerate set): summary.mean/std are then 0 and meaningless.
  bool summarized = false;
};

/// The result of one comparison of N maps with N references.
struct MapComparison {
  std::string kind;  ///< "class-mean", "models", "mask" or "maps" (compare_maps)
  std::vector<MetricColumn> metrics;  ///< in comparison_metric_names() order
  torch::Tensor map_constant;         ///< bool [N]: the map is constant (incl. all zero)
  torch::Tensor reference_constant;   ///< bool [N]: the reference is constant
  /// bool [N]: the fixation map is empty or covers every pixel; NSS and the
  /// AUCs are set to their chance values (0, 0.5) and flagged.
  torch::Tensor fixations_degenerate;
  int64_t num_map_constant = 0;
  int64_t num_reference_constant = 0;
  int64_t num_fixations_degenerate = 0;

  int64_t size() const { return map_constant.defined() ? map_constant.size(0) : 0; }
  /// The metric named `name`; throws c10::Error listing the names otherwise.
  const MetricColumn& get(const std::string& name) const;
};

/// Compares maps [N, H, W] with continuous references [N, H, W] (CC, KLD,
/// SIM) and binary fixation maps [N, H, W] (NSS, AUC-Judd, AUC-Borji; > 0 is
/// fixated). All real, non-negative, finite, on one device, and of exactly the
/// same shape. Throws c10::Error naming both shapes when they differ, and as
/// the metrics do for bad values.
MapComparison compare_maps(const torch::Tensor& maps, const torch::Tensor& reference,
                           const torch::Tensor& fixations, const CompareOptions& options = {});

/// Binary fixations of continuous references [N, H, W]: uint8 [N, H, W], 1
/// where the per-image min-max normalised value is >= threshold; all zero
/// for a constant reference. Throws c10::Error when threshold is not in (0, 1].
torch::Tensor fixations_from_reference(const torch::Tensor& reference, double threshold);

/// Mean map of each class: float32 [K, H, W] from maps [N, H, W] and labels
/// int64 [N] in [0, K); a class without images gets an all-zero map.
torch::Tensor class_mean_maps(const torch::Tensor& maps, const torch::Tensor& labels,
                              int64_t num_classes);

/// Each image's map against the mean map of its true class (leave-one-out if
/// options.leave_one_out). Throws c10::Error when labels are not int64 [N] in
/// [0, num_classes).
MapComparison compare_to_class_mean(const torch::Tensor& maps, const torch::Tensor& labels,
                                    int64_t num_classes, const CompareOptions& options = {});

/// Model A's map of each image (the prediction) against model B's map of the
/// same image (the reference). Throws c10::Error naming both shapes when the
/// maps differ in shape (e.g. different input sizes).
MapComparison compare_models(const torch::Tensor& maps_a, const torch::Tensor& maps_b,
                             const CompareOptions& options = {});

/// Each map against its ground-truth object mask: masks [N, 1, H, W] or
/// [N, H, W], uint8 (a Dataset's 0/255 masks, divided by 255) or real (used
/// as they are), serve as the continuous reference (CC/KLD/SIM) and as the
/// fixation map mask > 0 (NSS, AUCs). An all-zero mask (no object) is flagged
/// degenerate. Throws c10::Error naming both shapes when they differ.
MapComparison compare_to_masks(const torch::Tensor& maps, const torch::Tensor& masks,
                               const CompareOptions& options = {});

}  // namespace gradlens::saliency
